# RepPoints reppoints_moment_r50_fpn_gn-neck+head_2x_coco (MMDetection v2.28 config).
_base_ = './reppoints_moment_r50_fpn_gn-neck+head_1x_coco.py'
lr_config = dict(step=[16, 22])
runner = dict(type='EpochBasedRunner', max_epochs=24)

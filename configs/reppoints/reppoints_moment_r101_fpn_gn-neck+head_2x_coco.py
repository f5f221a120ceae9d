# RepPoints reppoints_moment_r101_fpn_gn-neck+head_2x_coco (MMDetection v2.28 config).
_base_ = './reppoints_moment_r50_fpn_gn-neck+head_2x_coco.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))

# What a user writes: inherit the v2 Faster R-CNN config, point at their data, swap the LR policy.
_base_ = '../../../configs/faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py'
data = dict(train=dict(ann_file='data/my_dataset/annotations/train.json'))
lr_config = dict(
    _delete_=True, policy='CosineAnnealing', warmup='linear', warmup_iters=200,
    warmup_ratio=0.001, min_lr_ratio=0.01)

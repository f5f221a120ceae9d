# Mask R-CNN R-101-FPN, 12 epochs on COCO: the R-50 config with a deeper backbone.
_base_ = './mask_rcnn_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))

# An MMDetection 2.6-era config: every old spelling the normaliser upgrades.
model = dict(
    type='FasterRCNN',
    pretrained='torchvision://resnet50',
    backbone=dict(type='ResNet', depth=50),
    roi_head=dict(type='StandardRoIHead'))
train_cfg = dict(
    rpn_proposal=dict(nms_across_levels=False, nms_pre=2000, nms_post=1000, max_num=1000,
                      nms_thr=0.7, min_bbox_size=0))
test_cfg = dict(
    rpn=dict(nms_across_levels=False, nms_pre=1000, nms_post=1000, max_num=1000, nms_thr=0.7,
             min_bbox_size=0),
    rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_thr=0.5), max_per_img=100))
data = dict(imgs_per_gpu=2, workers_per_gpu=2)
total_epochs = 12

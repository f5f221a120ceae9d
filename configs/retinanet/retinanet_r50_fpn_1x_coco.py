# RetinaNet R-50-FPN trained 12 epochs on COCO, with the base LR halved to 0.01.
_base_ = [
    '../_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]
# RetinaNet uses a smaller learning rate than the two-stage detectors
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001)

# Cascade R-CNN R-50-FPN trained 12 epochs on COCO (all settings come from the bases).
_base_ = [
    '../_base_/models/cascade_rcnn_r50_fpn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]

# Fine-tune COCO-trained Mask R-CNN on a one-class custom dataset in COCO format
# (the balloon example of the custom-dataset tutorial). Expected layout:
#   data/balloon/train/*.jpg + data/balloon/train/annotation_coco.json
#   data/balloon/val/*.jpg   + data/balloon/val/annotation_coco.json
_base_ = './mask_rcnn_r50_fpn_1x_coco.py'

# One foreground class: both the box head and the mask head predict a single class.
model = dict(
    roi_head=dict(
        bbox_head=dict(num_classes=1),
        mask_head=dict(num_classes=1)))

# Dataset settings: COCO-format annotations, restricted to the listed class names.
dataset_type = 'CocoDataset'
data_root = 'data/balloon/'
classes = ('balloon',)
data = dict(
    train=dict(
        type=dataset_type,
        classes=classes,
        ann_file=data_root + 'train/annotation_coco.json',
        img_prefix=data_root + 'train/'),
    val=dict(
        type=dataset_type,
        classes=classes,
        ann_file=data_root + 'val/annotation_coco.json',
        img_prefix=data_root + 'val/'),
    test=dict(
        type=dataset_type,
        classes=classes,
        ann_file=data_root + 'val/annotation_coco.json',
        img_prefix=data_root + 'val/'))

# Start from the COCO-trained weights (download them to this local path first);
# the class-specific layers are re-shaped, so their weights are skipped with a warning.
load_from = 'checkpoints/mask_rcnn_r50_fpn_1x_coco.pth'

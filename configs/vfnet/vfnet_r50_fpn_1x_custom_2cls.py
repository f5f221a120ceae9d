# Fine-tune COCO-trained VarifocalNet R-50-FPN on a two-class custom dataset in COCO format.
# Replace the placeholder class names ('a', 'b') and the paths with your own. Expected layout:
#   data/custom/train/*.jpg + data/custom/annotations/train.json
#   data/custom/val/*.jpg   + data/custom/annotations/val.json
_base_ = './vfnet_r50_fpn_1x_coco.py'

# Two foreground classes; the head's strides are VFNet's standard five FPN levels.
model = dict(
    bbox_head=dict(
        num_classes=2,
        strides=[8, 16, 32, 64, 128]))

# Dataset settings: COCO-format annotations, restricted to the listed class names.
dataset_type = 'CocoDataset'
data_root = 'data/custom/'
classes = ('a', 'b')
data = dict(
    samples_per_gpu=4,
    workers_per_gpu=2,
    train=dict(
        type=dataset_type,
        classes=classes,
        ann_file=data_root + 'annotations/train.json',
        img_prefix=data_root + 'train/'),
    val=dict(
        type=dataset_type,
        classes=classes,
        ann_file=data_root + 'annotations/val.json',
        img_prefix=data_root + 'val/'),
    test=dict(
        type=dataset_type,
        classes=classes,
        ann_file=data_root + 'annotations/val.json',
        img_prefix=data_root + 'val/'))

# Linear scaling rule: the COCO schedule uses lr 0.01 for 16 images per iteration;
# one GPU with 4 images per iteration gives 0.01 * 4 / 16 = 0.0025.
optimizer = dict(lr=0.0025)

# Start from the COCO-trained weights (download them to this local path first);
# the class-specific layer vfnet_cls is re-shaped, so its weights are skipped with a warning.
load_from = 'checkpoints/vfnet_r50_fpn_1x_coco.pth'

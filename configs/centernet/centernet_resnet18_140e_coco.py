# CenterNet ResNet-18 + CTResNetNeck with plain convs instead of DCNv2 (MMDetection v2.28 config).
_base_ = './centernet_resnet18_dcnv2_140e_coco.py'

model = dict(neck=dict(use_dcn=False))

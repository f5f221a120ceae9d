# Faster R-CNN, ResNet-18 + FPN with GroupNorm, trained from scratch on BCCD at 320x240.
# Sized for a CPU: ~1 s per iteration of 2 images on one core, 103 iterations per epoch.
# No pretrained weights (init_cfg=None): GN everywhere in backbone and neck (batch-size free,
# no train/test gap; BN with requires_grad and norm_eval=False reached the same test AP50 in a
# 4-epoch proxy), all stages trainable, AdamW with warmup and a step decay.
_base_ = [
    '../_base_/models/faster_rcnn_r50_fpn.py',
    '../_base_/datasets/bccd_detection.py', '../_base_/default_runtime.py'
]
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        zero_init_residual=False,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=None),
    neck=dict(
        in_channels=[64, 128, 256, 512], out_channels=128, norm_cfg=norm_cfg),
    rpn_head=dict(
        in_channels=128,
        feat_channels=128,
        # anchors 12/24/48/96/192 px on P2..P6: at 320x240 platelets are ~19 px, red cells
        # ~51 px and white cells ~95 px (median sqrt(area) of the train split, halved)
        anchor_generator=dict(scales=[3])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=512, num_classes=3)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=256))))
optimizer = dict(
    type='AdamW',
    lr=0.001,
    weight_decay=0.05,
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
lr_config = dict(
    policy='step',
    warmup='linear',
    warmup_iters=200,
    warmup_ratio=0.1,
    step=[14, 18])
runner = dict(type='EpochBasedRunner', max_epochs=20)
checkpoint_config = dict(interval=4, max_keep_ckpts=1)
log_config = dict(interval=20, hooks=[dict(type='TextLoggerHook')])
evaluation = dict(interval=4, metric='mAP')
seed = 0

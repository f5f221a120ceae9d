# 12-epoch (1x) SGD step schedule with linear warmup, MMDetection v2.28 values.
# SGD with momentum and weight decay
optimizer = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=None)
# LR policy: decay by 10x at the listed epochs
lr_config = dict(
    policy='step',
    warmup='linear',
    warmup_iters=500,
    warmup_ratio=0.001,
    step=[8, 11])
runner = dict(type='EpochBasedRunner', max_epochs=12)

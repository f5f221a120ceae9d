# GRoIE golden (MMDetection 3.3.0), v2 config syntax: the shared faster_rcnn fixture's
# model with v2's faster_rcnn_r50_fpn_groie_1x_coco bbox_roi_extractor, changed only in
# widths: out_channels=32, pre_cfg ConvModule 32->32, post_cfg GeneralizedAttention in_channels=32
# (standard 256; num_heads=6 kept, so the attention embeds 5 channels per head). Weights: the
# fixture's, except the keys in weights.pth (the pre/post modules). test_cfg.rcnn score_thr
# 0.04 (fixture 0.05): the random pre/post modules leave no score above 0.05.
model = dict(
    type='FasterRCNN',
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=16,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=None),
    neck=dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=32, num_outs=5),
    rpn_head=dict(
        type='RPNHead',
        in_channels=32,
        feat_channels=32,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0, 0.0, 0.0, 0.0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='GenericRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2),
            out_channels=32,
            featmap_strides=[4, 8, 16, 32],
            aggregation='sum',
            pre_cfg=dict(
                type='ConvModule',
                in_channels=32,
                out_channels=32,
                kernel_size=5,
                padding=2,
                inplace=False),
            post_cfg=dict(
                type='GeneralizedAttention',
                in_channels=32,
                spatial_range=-1,
                num_heads=6,
                attention_type='0100',
                kv_stride=2)),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=32,
            fc_out_channels=64,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0.0, 0.0, 0.0, 0.0],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=1000000,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=2000,
            max_per_img=1000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=False,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=1000000,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=1000,
            max_per_img=1000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(score_thr=0.04, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))

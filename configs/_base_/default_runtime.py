# Shared runtime defaults (hooks, logging, dist backend), MMDetection v2.28 values.
checkpoint_config = dict(interval=1)
# Plain-text logging every 50 iterations.
log_config = dict(
    interval=50,
    hooks=[
        dict(type='TextLoggerHook'),
    ])
custom_hooks = [dict(type='NumClassCheckHook')]

dist_params = dict(backend='nccl')
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]

# Keep OpenCV single-threaded inside data workers.
opencv_num_threads = 0
# Start worker processes with `fork`.
mp_start_method = 'fork'

# Linear LR scaling is off unless requested; the reference total batch is
# 16 images (8 GPUs x 2 images each).
auto_scale_lr = dict(enable=False, base_batch_size=16)

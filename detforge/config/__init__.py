"""The MMDetection v2 (mmcv 1.x) config language.

Example:
    >>> from detforge.config import Config
    >>> cfg = Config.fromstring("model = dict(type='RetinaNet', neck=dict(num_outs=5))", '.py')
    >>> cfg.model.neck.num_outs
    5
"""

from detforge.config.compat import normalize_config
from detforge.config.config import BASE_KEY, DELETE_KEY, RESERVED_KEYS, Config, merge_into
from detforge.config.config_dict import ConfigDict
from detforge.config.dict_action import DictAction, parse_cfg_value
from detforge.config.interpolate import replace_cfg_vals, update_data_root
from detforge.config.loading import LoadedConfig, cfg_options_from_env, load_config
from detforge.config.safe_eval import UnsafeExpressionError, safe_literal_eval

__all__ = [
    "BASE_KEY",
    "DELETE_KEY",
    "RESERVED_KEYS",
    "Config",
    "ConfigDict",
    "DictAction",
    "LoadedConfig",
    "UnsafeExpressionError",
    "cfg_options_from_env",
    "load_config",
    "merge_into",
    "normalize_config",
    "parse_cfg_value",
    "replace_cfg_vals",
    "safe_literal_eval",
    "update_data_root",
]

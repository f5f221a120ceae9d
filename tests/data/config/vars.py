# {{ _base_.x }} copies a base value (any type); predefined variables describe this file.
_base_ = './vars_base.py'
item8 = '{{fileBasename}}'
item9 = {{ _base_.item2 }}
item10 = {{_base_.item7.b.c}}
item11 = '{{ fileBasenameNoExtension }}'
item12 = '{{fileExtname}}'
item13 = '{{ fileDirname }}'

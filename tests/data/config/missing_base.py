_base_ = './no_such_file.py'

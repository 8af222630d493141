def run_row(config, ctx):
    raise NotImplementedError

"""workbench: read the real artifacts of a PyTorch run and say, with evidence, what is wrong."""

__version__ = "0.1.0"

_LAZY = ("capture", "distributed")


def __getattr__(name: str):
    """`workbench.capture` and `workbench.distributed` load on first use: the core never imports torch."""
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"workbench.{name}")
    if name == "explain":  # workbench.explain(text): the diagnosis of a pasted error in a notebook
        from workbench.text_input import explain

        return explain
    if name == "show":  # the notebook dashboard: ipywidgets and plotly load only when it is asked for
        from workbench.notebook import show

        return show
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    """`%load_ext workbench`: registers the `%workbench` and `%%workbench` magics."""
    from workbench.magic import load_ipython_extension as load

    load(ipython)

"""Image Alchemy: no arguments opens the app window; any other argument runs the command line.

``--self-test`` checks this installation end to end on the demo models (also in the frozen app);
``--demo`` opens the window with the built-in demo models chosen everywhere.
"""

import multiprocessing
import sys

USAGE = "usage: ImageAlchemy [--demo | --self-test [--keep] | COMMAND ...]  (COMMAND --help for more)"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--self-test"]:
        from alchemy_gui.self_test import main as self_test

        return self_test(args[1:])
    if args[:1] == ["--torchrun"]:  # `train --gpus N` in the frozen app: its `python -m torch.distributed.run`
        from torch.distributed.run import main as torchrun

        torchrun(args[1:])
        return 0
    if args[:1] == ["--demo"]:
        if len(args) > 1:
            print(f"error: --demo takes no other arguments\n{USAGE}", file=sys.stderr)
            return 2
        from alchemy_engine.paths import set_demo_mode

        set_demo_mode(True)
        args = []
    if args:
        from alchemy_gui.console import run_cli

        return run_cli(args)
    from alchemy_gui.console import has_console, redirect_to_log

    if not has_console():
        redirect_to_log("image-alchemy", [])
    from alchemy_gui.app import main as gui_main

    return gui_main()


if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen app must not start a second window in child processes
    sys.exit(main())

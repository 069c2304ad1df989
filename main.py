"""Image Alchemy: no arguments opens the app window; any argument runs the command line."""

import sys


def main() -> int:
    if len(sys.argv) > 1:
        from alchemy_engine.cli import main as cli_main

        return cli_main(sys.argv[1:])
    from alchemy_gui.app import main as gui_main

    return gui_main()


if __name__ == "__main__":
    sys.exit(main())

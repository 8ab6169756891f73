"""The arguments several ``rtafast`` commands share, declared once, and the declaration
of a command from its list of arguments."""

from ._args import backend_name, non_negative_int, quantity

__all__ = [
    "Argument",
    "add_command",
    "duration",
    "BACKEND",
    "SEED",
    "OVERRIDES",
    "NO_PROGRESS",
]


class Argument:
    """One ``add_argument`` call, declared once and added to any number of parsers.

    Parameters
    ----------
    *flags : str
        The option strings (``"-o", "--outdir"``) or a positional argument's name.
    **settings
        The keywords of `argparse.ArgumentParser.add_argument`.
    """

    def __init__(self, *flags, **settings):
        self.flags = flags
        self.settings = settings

    def but(self, **changes):
        """This argument with some settings changed.

        Parameters
        ----------
        **changes
            Settings that replace (or add to) this argument's.

        Returns
        -------
        Argument
        """
        return Argument(*self.flags, **{**self.settings, **changes})

    def add_to(self, parser):
        """Add this argument to ``parser``; a list default is copied, so that no two
        parsers (nor two parses) share it.

        Parameters
        ----------
        parser : argparse.ArgumentParser
            A command's parser.

        Returns
        -------
        argparse.Action
        """
        settings = {
            name: list(value) if isinstance(value, list) else value
            for name, value in self.settings.items()
        }
        return parser.add_argument(*self.flags, **settings)


def duration(flag, default, help):
    """An option whose value is a positive duration with its unit (``'10 min'``).

    Parameters
    ----------
    flag : str
        The option string.
    default : str
        The default duration, with its unit.
    help : str
        The option's help text.

    Returns
    -------
    Argument
    """
    return Argument(flag, type=quantity("s", "a duration"), default=default, help=help)


def add_command(sub, name, help, arguments, func, **parser_settings):
    """Declare a command: its parser, its arguments in order, the function that runs it.

    Parameters
    ----------
    sub : argparse subparsers
        The ``rtafast`` command's subcommands.
    name : str
        The command's name.
    help : str
        Its line in ``rtafast --help``.
    arguments : iterable of Argument
        Its arguments, in the order of its ``--help``.
    func : callable
        ``func(args)``: runs the command, returns the exit code.
    **parser_settings
        More keywords of ``sub.add_parser`` (``description``).

    Returns
    -------
    argparse.ArgumentParser
        The command's parser.
    """
    parser = sub.add_parser(name, help=help, **parser_settings)
    for argument in arguments:
        argument.add_to(parser)
    parser.set_defaults(func=func)
    return parser


#: ``--backend`` of the commands that compute on one backend.
BACKEND = Argument("--backend", type=backend_name, default=None, help="auto | numpy | numba | cuda")
#: ``--seed`` of the commands that simulate.
SEED = Argument("--seed", type=non_negative_int, default=0, help="random seed of the simulation")
#: ``--set SECTION.KEY=VALUE`` of the commands that read a config (repeated).
OVERRIDES = Argument(
    "--set",
    dest="overrides",
    action="append",
    default=[],
    metavar="SECTION.KEY=VALUE",
    help="override a config key (value read as YAML: 5, '0.1 deg', [23523, 23526]); repeat",
)
#: ``--no-progress`` of the commands with a progress bar.
NO_PROGRESS = Argument("--no-progress", action="store_true", help="no progress bar")

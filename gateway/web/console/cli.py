"""``afgw console passwd``: make the scrypt hash of an operator's password for ``http.console.accounts``.

The password is asked twice on the terminal (or read as one line from standard input with
``--stdin``), and never echoed, logged or taken from the command line, where ``ps`` would show it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from typing import Any

from gateway.web.console.auth import hash_password

MIN_LENGTH = 10


def add_parser(sub: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    console = sub.add_parser("console", help="the operator console", parents=list(parents))
    commands = console.add_subparsers(dest="console_command", required=True)
    passwd = commands.add_parser("passwd", help="print the password hash of a console account")
    passwd.add_argument("--stdin", action="store_true", help="read the password from standard input")
    passwd.set_defaults(func=passwd_cmd)


def passwd_cmd(args: argparse.Namespace) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("afgw console passwd: the two passwords differ", file=sys.stderr)
            return 2
    if len(password) < MIN_LENGTH:
        print(f"afgw console passwd: a password needs at least {MIN_LENGTH} characters", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0

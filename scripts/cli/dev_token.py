"""dev-token: mint a local Firebase (emulator) ID token with chosen uid, email and claims.

    scripts/dev-token --uid alice --email alice@example.com [--tenant acme --role admin]
        [--unverified] [--claim key=value ...] [--lifetime 3600]

Only the local stack accepts these (it runs firebase-admin in emulator mode).
"""

from __future__ import annotations

import argparse
import json
import sys

from cli.stack_config import STACK_FILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev-token", description=__doc__.split("\n")[0])
    parser.add_argument("--uid", default="dev-user")
    parser.add_argument("--email", help="default: <uid>@example.com")
    parser.add_argument("--unverified", action="store_true", help="email_verified = false")
    parser.add_argument("--tenant", help="custom claim `tenant`")
    parser.add_argument("--role", choices=["admin", "owner"], help="custom claim `role`")
    parser.add_argument("--claim", action="append", default=[], metavar="KEY=VALUE",
                        help="extra claim; VALUE is parsed as JSON when it can be")
    parser.add_argument("--lifetime", type=int, default=3600, help="seconds until exp")
    parser.add_argument("--project", help="default: the dev stack's, else demo-coditect")
    args = parser.parse_args(argv)

    from devstack.dev_tokens import emulator_id_token

    running = json.loads(STACK_FILE.read_text())["project_id"] if STACK_FILE.exists() else "demo-coditect"
    project = args.project or running
    claims = {}
    for item in args.claim:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--claim takes KEY=VALUE, got {item!r}")
        try:
            claims[key] = json.loads(value)
        except json.JSONDecodeError:
            claims[key] = value
    if args.tenant:
        claims["tenant"] = args.tenant
    if args.role:
        claims["role"] = args.role
    print(emulator_id_token(project, args.uid, email=args.email or f"{args.uid}@example.com",
                            email_verified=not args.unverified, lifetime_s=args.lifetime, **claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())

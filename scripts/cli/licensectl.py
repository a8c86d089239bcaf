"""licensectl: create tenants and licenses (the license key is printed once, never stored).

    scripts/licensectl create-tenant "Acme Corp" [--id acme] [--json]
    scripts/licensectl create-license --tenant acme --seats 10 [--tier pro] [--features a,b]
        [--expires 2027-12-31T00:00:00Z] [--lease-ttl 360] [--heartbeat-interval 300]
        [--allowed-domain acme.com ...] [--json]
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from cli.stack_config import use_configured_environment


def _actor() -> str:
    return f"licensectl:{getpass.getuser()}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="licensectl", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    tenant = commands.add_parser("create-tenant", help="create a tenant")
    tenant.add_argument("name")
    tenant.add_argument("--id", help="tenant id (default: derived from the name)")
    tenant.add_argument("--json", action="store_true", help="machine-readable output")

    lic = commands.add_parser("create-license", help="create a license and print its key once")
    lic.add_argument("--tenant", required=True)
    lic.add_argument("--seats", type=int, required=True, help="concurrent seats (max_seats)")
    lic.add_argument("--tier", default="standard")
    lic.add_argument("--features", default="", help="comma-separated feature names")
    lic.add_argument("--expires", help="RFC 3339 time the license ends (default: never)")
    lic.add_argument("--lease-ttl", type=int, help="seconds a lease lives without a heartbeat (default 360)")
    lic.add_argument("--heartbeat-interval", type=int, help="seconds between heartbeats (default 300)")
    lic.add_argument("--allowed-domain", action="append", default=[], help="restrict to verified emails of a domain")
    lic.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    where = use_configured_environment()

    from shared.clock import parse_rfc3339, rfc3339
    from shared.errors import ServiceError
    from shared.licensing.provisioning import LicenseSpec
    from shared.runtime import runtime

    provisioning = runtime().provisioning
    try:
        if args.command == "create-tenant":
            tenant = provisioning.create_tenant(args.name, tenant_id=args.id, actor=_actor())
            out = {"tenant": {"id": tenant.id, "name": tenant.name, "created_at": rfc3339(tenant.created_ms)}}
            human = f"tenant {tenant.id} ({tenant.name}) created in {where}"
        else:
            try:
                expires_ms = parse_rfc3339(args.expires) if args.expires else None
            except ValueError as exc:
                raise SystemExit(f"licensectl: --expires: {exc}") from None
            spec = LicenseSpec(
                tenant_id=args.tenant, max_seats=args.seats, tier=args.tier,
                features=tuple(f.strip() for f in args.features.split(",") if f.strip()),
                expires_ms=expires_ms, lease_ttl_s=args.lease_ttl, heartbeat_interval_s=args.heartbeat_interval,
                allowed_domains=tuple(args.allowed_domain),
            )
            issued = provisioning.create_license(spec, actor=_actor())
            lic = issued.license
            out = {
                "license": {**lic.public_view(), "tenant": lic.tenant_id, "max_seats": lic.max_seats,
                            "lease_ttl_s": lic.lease_ttl_s, "heartbeat_interval_s": lic.heartbeat_interval_s,
                            "allowed_domains": list(lic.allowed_domains)},
                "license_key": issued.license_key,
            }
            human = (f"license {lic.id} for tenant {lic.tenant_id} ({lic.max_seats} seats, tier {lic.tier}) "
                     f"created in {where}\n\n  license key: {issued.license_key}\n\n"
                     "The key is shown only now; it is stored hashed and cannot be recovered.")
    except ServiceError as exc:
        print(f"licensectl: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - e.g. AlreadyExists: say it plainly
        print(f"licensectl: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2) if args.json else human)
    return 0


if __name__ == "__main__":
    sys.exit(main())

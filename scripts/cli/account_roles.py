"""licensectl grant-role | revoke-role | whois | create-user: administrators, in Firebase Auth.

The admin function knows its callers by two custom claims of their Firebase ID tokens
(shared/auth/principal.py, shared/domain/principal.py):
    role    "owner": the platform operator (the vendor), acting in every tenant; no tenant
            "admin": the administrator of one tenant, named by the claim `tenant`
    tenant  a tenant id; an admin without a valid one administers nothing
Custom claims are set only through the Admin SDK (firebase-admin's set_custom_user_claims):
these commands talk to Firebase Auth directly, never to the admin function. Other custom
claims of the account are kept. A grant holds for ID tokens issued after it (the admin
function refuses older ones until the user signs in again or refreshes the token);
revoke-role also revokes the account's refresh tokens, so every session must sign in again;
the admin function, which checks a caller's account at most a minute apart, refuses the
account's current ID tokens within that minute.

    licensectl grant-role EMAIL_OR_UID --role admin --tenant acme
    licensectl grant-role smoke-owner@P.test --role owner --create --password-stdin <<< "$OWNER_PASSWORD"
    licensectl create-user smoke-user@P.test --password-stdin <<< "$USER_PASSWORD"
    licensectl revoke-role EMAIL_OR_UID
    licensectl whois EMAIL_OR_UID

Which Firebase Auth: --project P (or LICENSECTL_PROJECT): the project's own, as Application
Default Credentials allow (`gcloud auth application-default login`; the account needs
roles/firebaseauth.admin), or its emulator with --auth-emulator HOST:PORT (or
FIREBASE_AUTH_EMULATOR_HOST). Without --project: the running dev stack's Auth emulator.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cli import admin_views
from cli.errors import CliError, UsageError
from shared.auth.principal import principal_from_claims
from shared.domain.principal import ROLES
from shared.domain.times import rfc3339
from shared.ids import TENANT_ID

COMMANDS = ("grant-role", "revoke-role", "whois", "create-user")
ROLE_CLAIMS = ("role", "tenant")  # the claims these commands own; every other claim is kept
_ROLE_MEANING = {"owner": "the platform operator, the vendor, in every tenant; no --tenant",
                 "admin": "the administrator of one tenant, named with --tenant"}
_NEW_PASSWORD_ENV = "LICENSECTL_NEW_PASSWORD"
_SCOPES = ["https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/firebase",
           "https://www.googleapis.com/auth/userinfo.email"]


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    def account_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = command(name, help_text)
        sub.add_argument("user", metavar="EMAIL_OR_UID", help="the account: its email address or its uid")
        sub.add_argument("--project", default=os.environ.get("LICENSECTL_PROJECT"),
                         help="the Firebase project (LICENSECTL_PROJECT); default: the running dev stack's")
        sub.add_argument("--auth-emulator", metavar="HOST:PORT",
                         help="its Firebase Auth emulator (default: FIREBASE_AUTH_EMULATOR_HOST with --project, "
                              "else the dev stack's)")
        return sub

    grant = account_command("grant-role", "give an account role owner, or admin of a tenant (Firebase Auth)")
    grant.add_argument("--role", required=True, help=" | ".join(ROLES))
    grant.add_argument("--tenant", help="the tenant an admin administers")
    grant.add_argument("--create", action="store_true", help="create the account (EMAIL_OR_UID an email address) "
                       f"if it does not exist, with the password from --password-stdin or {_NEW_PASSWORD_ENV}")
    _new_account_options(grant)
    account_command("revoke-role", "take an account's role away and revoke its refresh tokens (Firebase Auth)")
    account_command("whois", "an account as Firebase Auth holds it, and what the admin function makes of it")
    create = account_command("create-user", "create a password account without a role (Firebase Auth)")
    _new_account_options(create)


def _new_account_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--password-stdin", action="store_true",
                     help=f"read the new account's password from stdin's first line (else {_NEW_PASSWORD_ENV})")
    sub.add_argument("--email-verified", action="store_true",
                     help="mark the new account's email verified (licenses with --allowed-domain need it)")


@dataclass(frozen=True)
class AuthTarget:
    project: str
    emulator: str | None

    def describe(self) -> str:
        if self.emulator:
            return f"the Firebase Auth emulator at {self.emulator} (project {self.project})"
        return f"Firebase Auth of project {self.project}"

    def as_dict(self) -> dict[str, Any]:
        return {"project": self.project, "emulator": self.emulator}


def _auth_target(args: argparse.Namespace) -> AuthTarget:
    emulator = args.auth_emulator
    if args.project:
        project = args.project.strip()
        emulator = emulator or os.environ.get("FIREBASE_AUTH_EMULATOR_HOST") or None
        if not emulator and project.startswith("demo-"):
            raise UsageError(f"project {project} is a demo project: it exists only in an emulator "
                             "(--auth-emulator HOST:PORT, or FIREBASE_AUTH_EMULATOR_HOST)")
    else:
        if args.base_url:
            raise UsageError(f"{args.command} talks to Firebase Auth, not to the admin function at --base-url "
                             "(LICENSECTL_BASE_URL): name its project with --project (or LICENSECTL_PROJECT)")
        from cli.admin_api import dev_stack, dev_stack_fact

        stack = dev_stack()
        project = dev_stack_fact(stack, "project_id")
        emulator = emulator or dev_stack_fact(stack, "firebase_auth_emulator_host")
    if emulator is not None:
        emulator = emulator.strip()
        host, _, port = emulator.rpartition(":")
        if not host or not port.isdigit() or "/" in emulator:
            raise UsageError(f"the Auth emulator is HOST:PORT (e.g. 127.0.0.1:9099), not {emulator!r}")
    return AuthTarget(project, emulator)


def _app(target: AuthTarget):
    import firebase_admin

    # firebase-admin reads the emulator's address from the environment when its client is made.
    if target.emulator:
        os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = target.emulator
    else:
        os.environ.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
    return firebase_admin.initialize_app(_credential(target.project), options={"projectId": target.project},
                                         name=f"licensectl-{uuid.uuid4().hex}")


def _credential(project: str):
    from firebase_admin import credentials

    class ApplicationDefaultForProject(credentials.Base):
        """Application Default Credentials; a person's (gcloud auth application-default login)
        bill the project itself when they name no quota project, as Identity Toolkit demands."""

        def __init__(self) -> None:
            self._credential: Any = None

        def get_credential(self):
            if self._credential is None:
                import google.auth
                import google.oauth2.credentials

                found, _ = google.auth.default(scopes=_SCOPES)
                if isinstance(found, google.oauth2.credentials.Credentials) and not found.quota_project_id:
                    found = found.with_quota_project(project)
                self._credential = found
            return self._credential

    return ApplicationDefaultForProject()


def _find(auth: Any, app: Any, ref: str):
    """The account named by email or uid, or None."""
    ref = ref.strip()
    if not ref:
        raise UsageError("name the account: its email address or uid")
    if "@" in ref:
        try:
            return auth.get_user_by_email(ref, app=app)
        except (auth.UserNotFoundError, ValueError):
            pass  # maybe a uid with an '@'
    try:
        return auth.get_user(ref, app=app)
    except auth.UserNotFoundError:
        return None
    except ValueError:  # not a possible uid (e.g. longer than 128 characters)
        return None


def _new_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        source = "stdin"
    else:
        password = os.environ.get(_NEW_PASSWORD_ENV, "")
        source = _NEW_PASSWORD_ENV
    if not password:
        raise UsageError(f"a new account needs a password: --password-stdin, or {_NEW_PASSWORD_ENV} "
                         f"({source} gave none)")
    return password


def _create(auth: Any, app: Any, args: argparse.Namespace):
    email = args.user.strip()
    if "@" not in email:
        raise UsageError(f"a new account is named by its email address, not {email!r}")
    return auth.create_user(email=email, password=_new_password(args), email_verified=args.email_verified, app=app)


def _role_claims(args: argparse.Namespace) -> dict[str, str]:
    role = args.role.strip()
    if role not in ROLES:
        known = " and ".join(f"{name} ({meaning})" for name, meaning in _ROLE_MEANING.items())
        raise UsageError(f"unknown role {args.role!r}: the admin function knows {known}")
    if role == "owner":
        if args.tenant:
            raise UsageError("an owner acts in every tenant: --tenant goes with --role admin only")
        return {"role": role}
    if not args.tenant:
        raise UsageError("--role admin needs --tenant: the tenant the account administers")
    if not TENANT_ID.fullmatch(args.tenant):
        raise UsageError(f"{args.tenant!r} is not a tenant id (3 to 63 of a-z, 0-9 and '-', beginning and ending "
                         "with a letter or digit)")
    return {"role": role, "tenant": args.tenant}


def administers(uid: str, claims: dict[str, Any]) -> str:
    """What the admin function makes of these claims (shared.auth.principal, as it reads them)."""
    try:
        principal = principal_from_claims({**claims, "uid": uid})
    except Exception:  # noqa: BLE001 - an unusable uid: the server refuses the account outright
        return "nothing: the admin function refuses this uid"
    if principal.is_owner:
        return "every tenant (role owner)"
    if principal.is_tenant_admin:
        return f"tenant {principal.tenant} (role admin)"
    if principal.role == "admin":
        return "nothing: role admin without a valid tenant claim"
    return "nothing (no role)"


def _account(user: Any, target: AuthTarget) -> dict[str, Any]:
    claims = dict(user.custom_claims or {})
    metadata = user.user_metadata
    return {
        "uid": user.uid, "email": user.email, "email_verified": bool(user.email_verified),
        "disabled": bool(user.disabled), "custom_claims": claims,
        "administers": administers(user.uid, claims),
        "created_at": rfc3339(metadata.creation_timestamp) if metadata and metadata.creation_timestamp else None,
        "last_sign_in_at": (rfc3339(metadata.last_sign_in_timestamp)
                            if metadata and metadata.last_sign_in_timestamp else None),
        "tokens_valid_after": (rfc3339(user.tokens_valid_after_timestamp)
                               if user.tokens_valid_after_timestamp else None),
        "auth": target.as_dict(),
    }


def _whois_text(account: dict[str, Any], target: AuthTarget) -> str:
    rows = [
        ("uid", account["uid"]),
        ("email", f"{account['email'] or '(none)'} ({'verified' if account['email_verified'] else 'not verified'})"),
        ("disabled", "yes" if account["disabled"] else "no"),
        ("custom claims", json.dumps(account["custom_claims"], ensure_ascii=False, sort_keys=True)),
        ("administers", account["administers"]),
        ("created", admin_views.when(account["created_at"], never="-")),
        ("last sign-in", admin_views.when(account["last_sign_in_at"], never="never")),
        ("tokens valid after", admin_views.when(account["tokens_valid_after"], never="-")),
        ("in", target.describe()),
    ]
    return "\n".join(f"{name:<19} {value}" for name, value in rows)


def run(args: argparse.Namespace) -> int:
    grant = _role_claims(args) if args.command == "grant-role" else None  # bad input first, before connecting
    if args.command == "grant-role" and args.password_stdin and not args.create:
        raise UsageError("--password-stdin is for a new account: add --create")
    target = _auth_target(args)
    import google.auth.exceptions
    from firebase_admin import auth
    from firebase_admin import exceptions as firebase_exceptions

    app = _app(target)
    try:
        answer, text = _perform(auth, app, args, target, grant)
    except auth.UserNotFoundError:
        raise CliError(f"no account {args.user!r} in {target.describe()}") from None
    except firebase_exceptions.FirebaseError as exc:
        raise CliError(f"{target.describe()} refused: {exc.code}: {exc}") from None
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise CliError(f"no Application Default Credentials for {target.describe()}: run `gcloud auth "
                       f"application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS): {exc}") from None
    except google.auth.exceptions.GoogleAuthError as exc:
        raise CliError(f"cannot authenticate to {target.describe()}: {exc}") from None
    except ValueError as exc:  # firebase-admin's own checks: an email, a password, claims too large
        raise UsageError(str(exc)) from None
    finally:
        import firebase_admin

        firebase_admin.delete_app(app)
    # Each line shown inert on its own (emails and claims come from users): the lines stay lines.
    print(json.dumps(answer, indent=2) if args.json else "\n".join(admin_views.inert(line)
                                                                   for line in text.splitlines()))
    return 0


def _perform(auth: Any, app: Any, args: argparse.Namespace, target: AuthTarget,
             grant: dict[str, str] | None) -> tuple[dict[str, Any], str]:
    user = _find(auth, app, args.user)
    if args.command == "create-user":
        if user is not None:
            raise CliError(f"{args.user} exists already (uid {user.uid}) in {target.describe()}; "
                           "its password is unchanged")
        user = _create(auth, app, args)
        account = _account(user, target)
        return ({**account, "created": True},
                f"created {user.email} (uid {user.uid}, no role) in {target.describe()}")
    created = False
    if user is None:
        if args.command == "grant-role" and args.create:
            user, created = _create(auth, app, args), True
        else:
            hint = " (--create makes it)" if args.command == "grant-role" else ""
            raise CliError(f"no account {args.user!r} in {target.describe()}{hint}")
    if args.command == "whois":
        account = _account(user, target)
        return account, _whois_text(account, target)

    before = dict(user.custom_claims or {})
    claims = {k: v for k, v in before.items() if k not in ROLE_CLAIMS}
    if grant is not None:
        claims.update(grant)
    changed = claims != before
    if changed:
        auth.set_custom_user_claims(user.uid, claims or None, app=app)
    revoked = False
    if args.command == "revoke-role" and any(name in before for name in ROLE_CLAIMS):
        auth.revoke_refresh_tokens(user.uid, app=app)
        revoked = True
    user = auth.get_user(user.uid, app=app)
    account = {**_account(user, target), "created": created, "claims_before": before,
               "refresh_tokens_revoked": revoked}
    who = f"{user.email or user.uid} (uid {user.uid})"
    lines = [f"created {who}" if created else ""]
    if args.command == "grant-role" and args.create and not created:
        lines.append(f"{who} exists already: its password is unchanged")
    if args.command == "grant-role":
        lines.append(f"{who} now administers {account['administers']}" if changed
                     else f"{who} already administers {account['administers']}: nothing changed")
    elif revoked:
        lines.append(f"{who} no longer administers anything; its refresh tokens are revoked: every session signs "
                     "in again, and the admin function refuses its current ID tokens within a minute (the life of "
                     "its account check)")
    else:
        lines.append(f"{who} had no role: nothing changed")
    lines.append(f"custom claims: {json.dumps(account['custom_claims'], ensure_ascii=False, sort_keys=True)}")
    lines.append(f"in: {target.describe()}")
    if changed and args.command == "grant-role":
        lines.append("ID tokens issued before now carry the old claims: the admin function refuses them until "
                     "the user signs in again or refreshes the token.")
    if user.disabled:
        lines.append("note: the account is disabled; it cannot sign in")
    return account, "\n".join(line for line in lines if line)

"""Google's Cloud Pub/Sub emulator (gcloud, Java) as a child process tree on a free port.

The Pub/Sub of ./scripts/dev and ./scripts/test: the Cloud SDK's component
`pubsub-emulator` (Debian package google-cloud-cli-pubsub-emulator), started with
`gcloud beta emulators pubsub start`; clients find it through PUBSUB_EMULATOR_HOST, as
google-cloud-pubsub does. There is no fallback to another emulator: a machine without
Google's fails loudly.

Nothing is kept across restarts, --persist or not: the emulator holds topics,
subscriptions and messages in memory only, so messages not yet pulled are lost when the
stack stops, and the stack recreates its topics (devstack.stack) at every start.

    python -m devstack.pubsub_emulator    # which emulator would run; exit 1 if none
"""

from __future__ import annotations

import sys

from devstack.gcloud_emulator import EmulatorFacts, EmulatorMissing, GcloudEmulator, answers_ok, installed_component

GOOGLE_EMULATOR = "google-cloud-pubsub-emulator"  # PubSubFacts.kind of Google's emulator
_COMPONENT = "pubsub-emulator"  # its id among the Cloud SDK's components, its folder in <sdk>/platform
_JAR = "lib/cloud-pubsub-emulator-*-all.jar"  # in that folder; the name holds the emulator's version
_INSTALL_HINT = (
    "Google's Cloud Pub/Sub emulator is required (Cloud SDK component pubsub-emulator, Debian package "
    "google-cloud-cli-pubsub-emulator; Java runs it). Install it from Google's Cloud SDK apt repository "
    "(apt-get install google-cloud-cli-pubsub-emulator openjdk-17-jre-headless), or set PUBSUB_EMULATOR_HOST "
    "to one you run. There is no fallback emulator."
)


class PubSubFacts(EmulatorFacts):
    """Which Pub/Sub emulator serves a stack (recorded for tools and asserted by a test)."""

    GOOGLE_KIND = GOOGLE_EMULATOR
    PRODUCT = "Pub/Sub"
    TITLE = "Cloud Pub/Sub"
    HOST_VARIABLE = "PUBSUB_EMULATOR_HOST"


def installed_emulator() -> tuple[str, PubSubFacts]:
    """(gcloud's path, the facts) of Google's Pub/Sub emulator on this machine.

    Raises:
        EmulatorMissing: gcloud, the emulator component or Java is missing; the message
            says what to install.
    """
    gcloud, version, sdk_version = installed_component(_COMPONENT, _JAR, _INSTALL_HINT)
    return gcloud, PubSubFacts(GOOGLE_EMULATOR, version, sdk_version, started_by_stack=True)


def external_emulator(host: str) -> PubSubFacts:
    """The facts of an emulator someone else runs at `host` (PUBSUB_EMULATOR_HOST)."""
    kind = GOOGLE_EMULATOR if answers_ok(host) else "unknown"
    return PubSubFacts(kind, "unknown", "unknown", started_by_stack=False)


class PubSubEmulator(GcloudEmulator):
    """Google's Pub/Sub emulator on 127.0.0.1:<free port>, started and stopped as one process
    tree (gcloud, a shell script, java: see devstack.gcloud_emulator.GcloudEmulator).

    It keeps nothing: `stop()` loses every topic, subscription and message not yet pulled.
    """

    WHAT = "Google's Pub/Sub emulator"
    LOG_PREFIX = "pubsub-emulator-"

    def __init__(self) -> None:
        super().__init__()
        self.facts: PubSubFacts | None = None

    def start(self) -> PubSubEmulator:
        """Raises EmulatorMissing if it is not installed, RuntimeError if it does not start."""
        gcloud, self.facts = installed_emulator()
        self._launch(gcloud, ["beta", "emulators", "pubsub", "start"])
        return self

    def describe(self) -> str:
        return self.facts.describe() if self.facts else f"{self.WHAT} (not started)"


def main() -> int:
    """Print which emulator ./scripts/dev and ./scripts/test would start; 1 if there is none."""
    try:
        _gcloud, facts = installed_emulator()
    except EmulatorMissing as exc:
        print(f"Pub/Sub emulator: {exc}", file=sys.stderr)
        return 1
    print(facts.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())

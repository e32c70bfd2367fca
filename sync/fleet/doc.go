// Package fleet updates a device's models and pipelines from signed
// desired-state manifests, for devices that see a network for minutes a
// day, over links that drop mid-transfer, and lose power without
// warning. FORMAT.md specifies the manifest, its canonical encoding, the
// signed envelope, the topics and the reported payload.
//
// An operator signs a manifest (`emberctl fleet sign`) and publishes it
// retained on fleet/v1/<fleet>/desired, or on
// fleet/v1/<fleet>/<device>/desired for one device
// (`emberctl fleet publish`). The Updater on each device:
//
//  1. verifies the envelope's ed25519 signature against its trusted keys
//     (fleet.trusted_keys, or the key list a pinned root key signed,
//     retained on fleet/v1/<fleet>/keys), checks the manifest's signed
//     scope (fleet, devices, not_before/not_after), and refuses a version
//     not above the highest it ever accepted (a replay or a downgrade),
//     even after a rollback or the loss of its database (a watermark file
//     keeps it), below a committed min_version, or far above it with one
//     signature only;
//  2. admits it or refuses it before any download: https artifact URLs,
//     license allow-list,
//     memory and architecture requirements, JSON Schema checks that
//     compile, free disk next to the running version;
//  3. downloads each artifact with Range requests (Downloader), resuming
//     across broken links and restarts from a checkpoint kept beside the
//     partial file, within a bandwidth limit and a schedule Window;
//  4. verifies size and sha256 and moves the file into place, fsynced;
//  5. activates the release in one switch (the daemon's Activator), runs
//     the manifest's checks (the daemon's Checker) before the release
//     takes traffic, and commits it, or rolls back to the previous
//     release when a check fails, the switch fails, or the daemon keeps
//     restarting before the release is confirmed;
//  6. keeps the previous releases for rollback (Rollback) and retires
//     older ones;
//  7. reports its phase, progress and errors, retained, on
//     fleet/v1/<fleet>/<device>/reported, again whenever the link comes
//     back.
//
// The update is a state machine: a typed Phase, and a pure transition
// function (machine.next) from a State and an Event to the next State.
// One goroutine, Run's, owns the state. Each phase names one side effect;
// the state naming it is persisted (one record, one transaction) before
// the side effect starts, so a restart redoes the step it stopped in,
// and every side effect is idempotent. A counter of starts in the
// unconfirmed phases breaks reboot loops.
//
// The package depends on small interfaces, not on a broker client or a
// database: Link (the MQTT connection), StateStore (durable small
// records; SettingsStore adapts daemon/store), Activator, Checker,
// Clock and Window.
package fleet

package fleet

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// The MQTT topics (FORMAT.md, "Topics").

// FleetDesiredTopic is where the manifest for a whole fleet is retained.
func FleetDesiredTopic(fleet string) string { return "fleet/v1/" + fleet + "/desired" }

// DeviceDesiredTopic is where a manifest for one device is retained; it
// wins over the fleet's.
func DeviceDesiredTopic(fleet, device string) string {
	return "fleet/v1/" + fleet + "/" + device + "/desired"
}

// ReportedTopic is where a device retains its report.
func ReportedTopic(fleet, device string) string {
	return "fleet/v1/" + fleet + "/" + device + "/reported"
}

// CheckName returns an error unless s can name a fleet or a device: 1-64
// letters, digits, '.', '_', ':' or '-', so it is one MQTT topic level
// and no wildcard.
func CheckName(s string) error {
	if !namePattern.MatchString(s) {
		return fmt.Errorf("%q must be 1-64 letters, digits, '.', '_', ':' or '-' (it is an MQTT topic level)", s)
	}
	return nil
}

type topics struct{ fleetDesired, deviceDesired, reported, keys string }

func newTopics(fleet, device string) topics {
	return topics{FleetDesiredTopic(fleet), DeviceDesiredTopic(fleet, device), ReportedTopic(fleet, device), KeyListTopic(fleet)}
}

// desiredKeys maps each desired topic to its key in the StateStore.
func (t topics) desiredKeys() map[string]string {
	return map[string]string{t.fleetDesired: keyDesiredFleet, t.deviceDesired: keyDesiredDevice}
}

// Status is the updater's state for UpdateService.Status, `emberctl
// status` and the reported topic.
type Status struct {
	Phase Phase `json:"phase"`
	// ActiveVersion is the committed release's manifest version (0: the
	// daemon's own config, no fleet update yet).
	ActiveVersion int64 `json:"active_version"`
	// TargetVersion is the version being installed, when one is.
	TargetVersion int64 `json:"target_version,omitempty"`
	// HighestVersion is the highest manifest version ever accepted.
	HighestVersion int64 `json:"highest_version"`
	// MinVersion is the floor committed manifests' min_version set.
	MinVersion int64 `json:"min_version,omitempty"`
	// KeysVersion is the version of the key list in force (0: the
	// config's fleet.trusted_keys).
	KeysVersion int64 `json:"keys_version,omitempty"`
	// KeptVersions can be rolled back to, newest first.
	KeptVersions []int64 `json:"kept_versions,omitempty"`
	// Artifacts of the active release.
	Artifacts []ArtifactInfo `json:"artifacts,omitempty"`
	// BytesDone, BytesTotal and Percent are the download's progress.
	BytesDone  int64   `json:"bytes_done,omitempty"`
	BytesTotal int64   `json:"bytes_total,omitempty"`
	Percent    float64 `json:"percent,omitempty"`
	// Reason says why the last update failed or was rolled back.
	Reason string `json:"reason,omitempty"`
	// LastError is the latest transient error (a download retry) or
	// refused manifest; it clears on the next success.
	LastError string `json:"last_error,omitempty"`
	// Ignored says, per retained topic, why its payload is not followed:
	// a device topic whose manifest does not verify (the fleet's is
	// followed instead), a refused key list. An entry stays while the
	// payload does.
	Ignored []string `json:"ignored,omitempty"`
	// BootAttempts counts restarts of an unconfirmed update.
	BootAttempts int    `json:"boot_attempts,omitempty"`
	Transitions  uint64 `json:"transitions"`
	// Online is whether the link is up (not reported: a report is only
	// ever sent online).
	Online bool `json:"-"`
}

// ArtifactInfo describes an artifact of the active release.
type ArtifactInfo struct {
	Kind    Kind   `json:"kind"`
	Name    string `json:"name"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	License string `json:"license,omitempty"`
	Path    string `json:"-"`
}

func (s *Status) fromState(st State) {
	phaseChanged := s.Phase != st.Phase
	s.Phase = st.Phase
	s.ActiveVersion = st.Current.Version
	s.TargetVersion = targetVersion(st)
	s.HighestVersion = st.Highest
	s.MinVersion = st.Floor
	s.KeptVersions = keptVersions(st.Kept)
	s.Artifacts = s.Artifacts[:0]
	for _, a := range st.Current.Artifacts {
		s.Artifacts = append(s.Artifacts, ArtifactInfo{Kind: a.Kind, Name: a.Name, SHA256: a.SHA256, Size: a.Size, License: a.License, Path: a.Path})
	}
	s.Reason = st.Reason
	s.BootAttempts = st.Attempts
	s.Transitions = st.Transitions
	if phaseChanged && st.Phase != PhaseDownloading {
		s.BytesDone, s.BytesTotal, s.Percent = 0, 0, 0
	}
}

func (s *Status) setProgress(done, total int64) {
	s.BytesDone, s.BytesTotal = done, total
	if total > 0 {
		s.Percent = float64(done*1000/total) / 10
	}
}

func (s Status) clone() Status {
	s.KeptVersions = slices.Clone(s.KeptVersions)
	s.Ignored = slices.Clone(s.Ignored)
	s.Artifacts = slices.Clone(s.Artifacts)
	return s
}

// ReportFormat is the reported payload's format.
const ReportFormat = 1

// Report is the payload retained on the reported topic.
type Report struct {
	Format int       `json:"format"`
	Fleet  string    `json:"fleet"`
	Device string    `json:"device"`
	Time   time.Time `json:"time"`
	Status
}

func (u *Updater) reportPayload() ([]byte, error) {
	return json.Marshal(Report{
		Format: ReportFormat, Fleet: u.opts.Fleet, Device: u.opts.Device,
		Time: u.clock.Now().UTC().Truncate(time.Millisecond), Status: u.Status(),
	})
}

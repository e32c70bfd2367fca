package uplink

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ember-edge/ember/daemon/config"
	"github.com/ember-edge/ember/internal/mqtturl"
	"github.com/ember-edge/ember/internal/tlsconf"
	"github.com/ember-edge/ember/sync/redact"
)

// Topics are the topic templates of the record kinds; {fleet} and
// {device} are replaced.
type Topics struct {
	Results, Telemetry, DeadLetters, Audit string
	// Ack is where the collector confirms what it stored (Ack); the
	// device subscribes to it when Options.Confirm is ConfirmCollector.
	// Empty is DefaultAckTopic.
	Ack string
}

// DefaultAckTopic is the collector's ack topic of config's defaults.
const DefaultAckTopic = "fleet/v1/{fleet}/{device}/ack"

// AckTopic returns the ack topic with {fleet} and {device} replaced.
func (t Topics) AckTopic(fleet, device string) string {
	a := t.Ack
	if a == "" {
		a = DefaultAckTopic
	}
	return strings.NewReplacer("{fleet}", fleet, "{device}", device).Replace(a)
}

// The values of Options.Confirm: what makes a sent record delivered.
const (
	// ConfirmBroker counts a record delivered at the broker's PUBACK (the
	// behaviour before confirmed delivery).
	ConfirmBroker = "broker"
	// ConfirmCollector counts it delivered once the fleet's collector
	// acknowledged storing it on the ack topic; records sent but not
	// confirmed within ConfirmTimeout are sent again.
	ConfirmCollector = "collector"
)

// DefaultTopics are the topics of config's defaults.
var DefaultTopics = Topics{
	Results:     "fleet/v1/{fleet}/{device}/results",
	Telemetry:   "fleet/v1/{fleet}/{device}/telemetry",
	DeadLetters: "fleet/v1/{fleet}/{device}/deadletters",
	Audit:       "fleet/v1/{fleet}/{device}/audit",
}

// Resolve returns the topic of each kind with {fleet} and {device}
// replaced.
func (t Topics) Resolve(fleet, device string) map[string]string {
	r := strings.NewReplacer("{fleet}", fleet, "{device}", device)
	return map[string]string{
		KindResult: r.Replace(t.Results), KindTelemetry: r.Replace(t.Telemetry),
		KindDeadLetter: r.Replace(t.DeadLetters), KindAudit: r.Replace(t.Audit),
	}
}

// Options configure an Uplink. URL, Fleet, Device and Outbox are
// required; zero values elsewhere take the defaults noted.
type Options struct {
	// URL is tcp://, ssl://, mqtt:// or mqtts:// host:port.
	URL string
	// Fleet and Device name the topics; Device is also the envelope's
	// device_id.
	Fleet, Device string
	// ClientID defaults to Device (as uplink.client_id documents).
	ClientID           string
	Username, Password string
	// TLS configures ssl:// connections (CA, client certificate); nil
	// uses the system roots.
	TLS    *tls.Config
	Topics Topics // default DefaultTopics

	// BackoffMin and BackoffMax bound the pause between dial attempts
	// (default 1s and 5m).
	BackoffMin, BackoffMax time.Duration
	// BatchRecords and BatchBytes bound one batch: records, and bytes of
	// uncompressed envelope (default 256 and 256 KiB). A record larger
	// than BatchBytes goes alone.
	BatchRecords, BatchBytes int
	// Window is how many batches may await their PUBACK (default 8).
	Window int
	// Bandwidth caps the bytes published per second; 0 is no cap.
	Bandwidth int64
	// Schedule holds daily windows of local time ("01:00-05:00",
	// "22:00-06:00") in which records may go out; none means any time.
	// Outside them the connection stays up (for the Link) but no record
	// goes out.
	Schedule []string
	// DailyBudget caps the bytes published per local day; 0 is no cap.
	DailyBudget int64
	// Location is the time zone of Schedule and of the budget's day;
	// nil is time.Local.
	Location *time.Location
	// Redact is applied to every record's data before it leaves.
	Redact []redact.Rule

	// KeepAlive is the MQTT keepalive (default 30s).
	KeepAlive time.Duration
	// ConnectTimeout bounds one dial attempt (default 30s).
	ConnectTimeout time.Duration
	// AckTimeout ends a connection on which a batch waited this long for
	// its PUBACK (default 60s); it also bounds the Link's waits.
	AckTimeout time.Duration
	// Poll is how often an online uplink looks for records nobody Poked
	// it about (default 30s).
	Poll time.Duration

	// Confirm is ConfirmCollector or ConfirmBroker (the default here;
	// the daemon's config defaults to collector). ConfirmCollector needs
	// an Outbox that is also a Confirmer.
	Confirm string
	// ConfirmTimeout is how long records sent but not confirmed by the
	// collector wait before they are sent again (default 2m); it doubles
	// with each resend that brings no confirmation, up to 16 times.
	ConfirmTimeout time.Duration

	Outbox Outbox
	// Settings keeps the day's byte count and the outbox id across
	// restarts; nil keeps them in memory (then a restart starts the
	// day's count again and makes a new outbox id).
	Settings Settings
	// SettingsNotFound is the error, matched with errors.Is, that
	// Settings.Setting returns for a key never set (store.ErrNotFound for
	// daemon/store). Only that error makes a new outbox id: a transient
	// read error must not, or the consumer would take records sent again
	// for new ones. Required with Settings.
	SettingsNotFound error
	// Clock defaults to SystemClock.
	Clock  Clock
	Logger *slog.Logger
	// Rand returns numbers in [0, 1) for backoff jitter; nil is
	// math/rand/v2.
	Rand func() float64
}

// FromConfig turns the daemon's config into Options, reading the TLS
// files it names. Outbox, Settings and Logger are left for the caller.
func FromConfig(u config.Uplink, rules []config.RedactRule, deviceID string) (Options, error) {
	o := Options{
		URL: u.URL, Fleet: u.Fleet, Device: deviceID, ClientID: u.ClientID,
		Username: u.Username, Password: u.Password,
		Topics:     Topics{Results: u.Topics.Results, Telemetry: u.Topics.Telemetry, DeadLetters: u.Topics.DeadLetters, Audit: u.Topics.Audit},
		BackoffMin: u.Backoff.Min.D(), BackoffMax: u.Backoff.Max.D(),
		BatchRecords: u.BatchRecords, BatchBytes: int(u.BatchBytes), Window: u.Window,
		Bandwidth: int64(u.Bandwidth), Schedule: u.Schedule, DailyBudget: int64(u.DailyBudget),
		Confirm: u.Confirm, ConfirmTimeout: u.ConfirmTimeout.D(),
	}
	o.Topics.Ack = u.Topics.Ack
	for _, r := range rules {
		o.Redact = append(o.Redact, redact.Rule(r))
	}
	if u.CA != "" || u.TLS.Cert != "" {
		tc, err := tlsconf.Client{CA: u.CA, Cert: u.TLS.Cert, Key: u.TLS.Key, Keys: tlsconf.Keys{
			CA: "uplink.ca", Cert: "uplink.tls.cert", Key: "uplink.tls.key"}}.Config()
		if err != nil {
			return o, err
		}
		o.TLS = tc
	}
	return o, nil
}

// withDefaults fills zero values and checks what is set, reporting every
// problem at once.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if _, err := mqtturl.Paho(o.URL); err != nil {
		errs = append(errs, fmt.Errorf("url %q: %w", o.URL, err))
	}
	if o.Fleet == "" || o.Device == "" {
		errs = append(errs, errors.New("fleet and device must be set"))
	}
	if o.Outbox == nil {
		errs = append(errs, errors.New("no outbox"))
	}
	if o.Settings != nil && o.SettingsNotFound == nil {
		errs = append(errs, errors.New("settings given without SettingsNotFound, the error a key never set reads as"))
	}
	if o.ClientID == "" {
		o.ClientID = o.Device
	}
	if o.Topics.Results == "" && o.Topics.Telemetry == "" && o.Topics.DeadLetters == "" && o.Topics.Audit == "" {
		o.Topics.Results, o.Topics.Telemetry = DefaultTopics.Results, DefaultTopics.Telemetry
		o.Topics.DeadLetters, o.Topics.Audit = DefaultTopics.DeadLetters, DefaultTopics.Audit
	}
	switch o.Confirm {
	case "", ConfirmBroker:
		o.Confirm = ConfirmBroker
	case ConfirmCollector:
		if _, ok := o.Outbox.(Confirmer); !ok && o.Outbox != nil {
			errs = append(errs, errors.New("confirm: collector needs an outbox with confirmed cursors (Confirmer)"))
		}
	default:
		errs = append(errs, fmt.Errorf("confirm %q is not collector or broker", o.Confirm))
	}

	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.BackoffMin, time.Second)
	def(&o.BackoffMax, 5*time.Minute)
	def(&o.KeepAlive, 30*time.Second)
	def(&o.ConnectTimeout, 30*time.Second)
	def(&o.AckTimeout, 60*time.Second)
	def(&o.Poll, 30*time.Second)
	def(&o.ConfirmTimeout, 2*time.Minute)
	if o.BackoffMax < o.BackoffMin {
		errs = append(errs, fmt.Errorf("backoff max %v is below min %v", o.BackoffMax, o.BackoffMin))
	}
	if o.BatchRecords <= 0 {
		o.BatchRecords = 256
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 256 << 10
	}
	if o.Window <= 0 {
		o.Window = 8
	}
	if o.Bandwidth < 0 || o.DailyBudget < 0 {
		errs = append(errs, errors.New("bandwidth and daily budget must not be negative"))
	}
	if _, err := parseSchedule(o.Schedule); err != nil {
		errs = append(errs, err)
	}
	if _, err := redact.New(o.Redact); err != nil {
		errs = append(errs, err)
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Clock == nil {
		o.Clock = SystemClock
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, errors.Join(errs...)
}

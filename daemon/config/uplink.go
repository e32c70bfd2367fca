package config

// Uplink configures opportunistic sync of the outbox to the fleet's
// MQTT broker.
type Uplink struct {
	// URL is tcp://host:port or ssl://host:port; empty disables the uplink.
	URL string `yaml:"url"`
	// Fleet names the fleet in topics.
	Fleet string `yaml:"fleet"`
	// ClientID defaults to the device id.
	ClientID string `yaml:"client_id"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// CA verifies the broker; TLS holds the device's client certificate.
	CA  string `yaml:"ca"`
	TLS TLS    `yaml:"tls"`
	// Backoff bounds the pause between dial attempts while offline; it
	// doubles, with jitter, from Min to Max.
	Backoff Backoff      `yaml:"backoff"`
	Topics  UplinkTopics `yaml:"topics"`
	// BatchRecords and BatchBytes bound one MQTT message of records.
	BatchRecords int      `yaml:"batch_records"`
	BatchBytes   ByteSize `yaml:"batch_bytes"`
	// Window is how many batches may await their PUBACK at once.
	Window int `yaml:"window"`
	// Bandwidth caps the upload rate in bytes per second; 0 is no cap.
	Bandwidth ByteSize `yaml:"bandwidth"`
	// Schedule limits uploads to these daily windows of local time, such
	// as "01:00-05:00"; empty means any time.
	Schedule []string `yaml:"schedule"`
	// DailyBudget caps the bytes sent per day; 0 is no cap.
	DailyBudget ByteSize `yaml:"daily_budget"`
	// Retention keeps confirmed records on the device this long.
	Retention Duration `yaml:"retention"`
	// Confirm says what makes a record delivered: "collector" (default;
	// the fleet's collector acknowledged storing it on the ack topic) or
	// "broker" (the broker's PUBACK, as before confirmed delivery).
	Confirm string `yaml:"confirm"`
	// ConfirmTimeout is how long sent records wait for the collector's
	// confirmation before they are sent again (with backoff).
	ConfirmTimeout Duration `yaml:"confirm_timeout"`
}

// UplinkTopics are the topics records go to; {fleet} and {device} are
// replaced.
type UplinkTopics struct {
	Results     string `yaml:"results"`
	Telemetry   string `yaml:"telemetry"`
	DeadLetters string `yaml:"deadletters"`
	Audit       string `yaml:"audit"`
	// Ack is where the collector confirms what it stored.
	Ack string `yaml:"ack"`
}

// RedactRule rewrites what leaves the device. Exactly one of Pattern (a
// regular expression matched in every string value), Field (a JSON path
// whose value is replaced whole) and Builtin (email, phone, ipv4 or
// serial) is set.
type RedactRule struct {
	Pattern string `yaml:"pattern"`
	Field   string `yaml:"field"`
	Builtin string `yaml:"builtin"`
	// Replace is what replaces a match; default "[REDACTED]".
	Replace string `yaml:"replace"`
}

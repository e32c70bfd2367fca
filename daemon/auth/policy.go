package auth

import "fmt"

// Permission is one thing a caller may be allowed to do, and the lowest
// role that may do it.
type Permission struct {
	// Name is what a denial names: "models.load".
	Name string
	// Role is the lowest role that holds the permission.
	Role Role
}

// Allows reports whether role holds p.
func (p Permission) Allows(role Role) bool { return role >= p.Role }

// The permissions. Each RPC requires exactly one (Policy); a few also
// gate what a handler returns or accepts within an RPC (ReadLocal,
// ReadAudit, InspectPath).
var (
	Health     = Permission{"health", None}
	WhoAmI     = Permission{"auth.whoami", Viewer}
	Reflect    = Permission{"reflection", Viewer}
	DeviceRead = Permission{"device.read", Viewer}
	ModelsRead = Permission{"models.read", Viewer}
	JobsRead   = Permission{"jobs.read", Viewer}
	// RecordsRead reads shared outbox records; ReadLocal adds local ones.
	RecordsRead     = Permission{"records.read", Viewer}
	PipelinesRead   = Permission{"pipelines.read", Viewer}
	SyncStatus      = Permission{"sync.status", Viewer}
	UpdatesStatus   = Permission{"updates.status", Viewer}
	Infer           = Permission{"inference", Technician}
	JobsSubmit      = Permission{"jobs.submit", Technician}
	JobsCancel      = Permission{"jobs.cancel", Technician}
	PipelinesCheck  = Permission{"pipelines.validate", Technician}
	SyncNow         = Permission{"sync.now", Technician}
	ModelsLoad      = Permission{"models.load", Operator}
	ModelsUnload    = Permission{"models.unload", Operator}
	ModelsImport    = Permission{"models.import", Operator}
	PipelinesReload = Permission{"pipelines.reload", Operator}
	// ReadLocal lets a caller see records and jobs classified local:
	// lower roles have them filtered out, not refused.
	ReadLocal = Permission{"records.read_local", Operator}
	// InspectPath lets ModelService.Inspect open a file by path rather
	// than a registered model by name: the path names any file the
	// daemon can read.
	InspectPath     = Permission{"models.inspect_path", Operator}
	UpdatesRollback = Permission{"updates.rollback", Admin}
	TokensManage    = Permission{"tokens.manage", Admin}
	// ReadAudit lets a caller see audit records: the chain
	// (AuditService.List) and their copies in the outbox.
	ReadAudit = Permission{"audit.read", Admin}
	// VerifyAudit walks the audit chain and its signed checkpoints.
	VerifyAudit = Permission{"audit.verify", Admin}
)

// Permissions lists every permission, for WhoAmI and the docs.
var Permissions = []Permission{
	Health, WhoAmI, Reflect, DeviceRead, ModelsRead, JobsRead, RecordsRead, PipelinesRead, SyncStatus, UpdatesStatus,
	Infer, JobsSubmit, JobsCancel, PipelinesCheck, SyncNow,
	ModelsLoad, ModelsUnload, ModelsImport, PipelinesReload, ReadLocal, InspectPath,
	UpdatesRollback, TokensManage, ReadAudit, VerifyAudit,
}

// Policy gives every RPC, by its full gRPC method name, the one
// permission it requires. daemon/api refuses a call to a method missing
// here, and its tests fail when a registered method has no entry. The
// names are plain strings so this package needs no gRPC.
var Policy = map[string]Permission{
	"/grpc.health.v1.Health/Check": Health,
	"/grpc.health.v1.Health/Watch": Health,
	"/grpc.health.v1.Health/List":  Health,

	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      Reflect,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Reflect,

	"/ember.v1.AuditService/List":   ReadAudit,
	"/ember.v1.AuditService/Verify": VerifyAudit,

	"/ember.v1.AuthService/WhoAmI":      WhoAmI,
	"/ember.v1.AuthService/CreateToken": TokensManage,
	"/ember.v1.AuthService/ListTokens":  TokensManage,
	"/ember.v1.AuthService/RevokeToken": TokensManage,

	"/ember.v1.DeviceService/Info":     DeviceRead,
	"/ember.v1.DeviceService/Hardware": DeviceRead,

	"/ember.v1.InferenceService/Generate": Infer,
	"/ember.v1.InferenceService/Chat":     Infer,
	"/ember.v1.InferenceService/Embed":    Infer,
	"/ember.v1.InferenceService/Tokenize": Infer,

	"/ember.v1.JobService/Submit": JobsSubmit,
	"/ember.v1.JobService/Get":    JobsRead,
	"/ember.v1.JobService/List":   JobsRead,
	"/ember.v1.JobService/Watch":  JobsRead,
	"/ember.v1.JobService/Cancel": JobsCancel,

	"/ember.v1.ModelService/List":    ModelsRead,
	"/ember.v1.ModelService/Inspect": ModelsRead,
	"/ember.v1.ModelService/Load":    ModelsLoad,
	"/ember.v1.ModelService/Unload":  ModelsUnload,
	"/ember.v1.ModelService/Import":  ModelsImport,

	"/ember.v1.OutboxService/List":  RecordsRead,
	"/ember.v1.OutboxService/Get":   RecordsRead,
	"/ember.v1.OutboxService/Stats": RecordsRead,

	"/ember.v1.PipelineService/List":     PipelinesRead,
	"/ember.v1.PipelineService/Get":      PipelinesRead,
	"/ember.v1.PipelineService/Validate": PipelinesCheck,
	"/ember.v1.PipelineService/Reload":   PipelinesReload,

	"/ember.v1.SyncService/Status": SyncStatus,
	"/ember.v1.SyncService/Now":    SyncNow,

	"/ember.v1.UpdateService/Status":   UpdatesStatus,
	"/ember.v1.UpdateService/Rollback": UpdatesRollback,
}

// Decision is the outcome of Check.
type Decision int

// The decisions.
const (
	// Allow lets the call through.
	Allow Decision = iota
	// Deny refuses an identified caller whose role is too low.
	Deny
	// Unauthenticated refuses a caller who did not say who it is.
	Unauthenticated
	// Unlisted refuses a method the policy does not name: a method added
	// without an entry is closed, not open.
	Unlisted
)

// Check decides whether id may call method, and returns the permission
// it requires.
func Check(method string, id Identity) (Permission, Decision) {
	p, ok := Policy[method]
	if !ok {
		return Permission{Name: method, Role: Admin + 1}, Unlisted
	}
	switch {
	case p.Role == None:
		return p, Allow
	case id.Role == None:
		return p, Unauthenticated
	case p.Allows(id.Role):
		return p, Allow
	}
	return p, Deny
}

// DenyMessage says why id may not use p, naming both:
// "models.load requires role operator; you are uid 1000 (alice) with role viewer".
func DenyMessage(p Permission, id Identity) string {
	return fmt.Sprintf("%s requires role %s; you are %s with role %s", p.Name, p.Role, id, id.Role)
}

package auth

import (
	"fmt"
	"strings"
)

// Role is what a caller may do. Roles are ordered: each may do all that
// the ones below it may.
type Role int

// The roles, lowest first. None is no role at all: an unauthenticated
// caller has it, and a permission that requires it is open to everyone
// (health checks).
const (
	None Role = iota
	// Viewer reads status, models, hardware and shared records.
	Viewer
	// Technician adds inference, job submission and cancellation, and
	// sync now.
	Technician
	// Operator adds model load, unload and import, pipeline reloads, and
	// reading local records.
	Operator
	// Admin adds fleet updates and rollback, tokens and the audit trail.
	Admin
)

// Roles lists the roles a caller can be given, lowest first.
var Roles = []Role{Viewer, Technician, Operator, Admin}

var roleNames = [...]string{None: "none", Viewer: "viewer", Technician: "technician", Operator: "operator", Admin: "admin"}

// String returns the role's name as the config writes it.
func (r Role) String() string {
	if r < None || int(r) >= len(roleNames) {
		return fmt.Sprintf("role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole reads a role name; "none" is refused, because no one is
// given it on purpose.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if strings.EqualFold(s, r.String()) {
			return r, nil
		}
	}
	return None, fmt.Errorf("%q: %w", s, ErrUnknownRole)
}

package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresCluster is a throwaway PostgreSQL cluster for one test binary:
// initdb into a temporary directory, listening on a unix socket in it
// only (no TCP port), run as the postgres user when the tests run as
// root (initdb refuses root). Tests take a fresh database each
// (Postgres).
type PostgresCluster struct {
	Dir  string // holds data/, the socket and the log
	bin  string
	cred *syscall.Credential
	mu   sync.Mutex
	up   bool
}

var (
	pgOnce    sync.Once
	pgCluster *PostgresCluster
	pgErr     error
	pgDBs     atomic.Int64
)

// PostgresBinDir finds the directory of initdb and pg_ctl: Debian's
// /usr/lib/postgresql/<version>/bin (the newest), else PATH.
func PostgresBinDir() (string, bool) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "pg_ctl")) {
			return d, true
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), true
		}
	}
	return "", false
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// Postgres returns a connection string for a new, empty database in the
// test binary's cluster, starting the cluster on first use. A machine
// without PostgreSQL fails the test with the command that installs it:
// these tests never skip. Call StopPostgres from TestMain (RunMain does)
// to remove the cluster when the binary ends.
func Postgres(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pgCluster, pgErr = startCluster() })
	if pgErr != nil {
		t.Fatal(pgErr)
	}
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), pgDBs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgCluster.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect to the test cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return pgCluster.DSN(name)
}

// PostgresTestCluster returns the cluster Postgres started (to stop and
// start it in a test), or nil before the first Postgres call.
func PostgresTestCluster() *PostgresCluster { return pgCluster }

// RunMain runs the tests and then stops the cluster, for TestMain:
// os.Exit(testkit.RunMain(m)).
func RunMain(m *testing.M) int {
	code := m.Run()
	StopPostgres()
	return code
}

// StopPostgres stops the cluster, if one was started, and removes it.
func StopPostgres() {
	if pgCluster != nil {
		pgCluster.Stop()
		os.RemoveAll(pgCluster.Dir)
	}
}

// DSN returns the connection string of database db over the socket.
func (c *PostgresCluster) DSN(db string) string {
	return fmt.Sprintf("host=%s user=postgres dbname=%s sslmode=disable", c.Dir, db)
}

func startCluster() (*PostgresCluster, error) {
	bin, ok := PostgresBinDir()
	if !ok {
		return nil, fmt.Errorf("PostgreSQL is not installed (no initdb and pg_ctl in /usr/lib/postgresql/*/bin or on PATH); these tests need a real database: apt-get install -y postgresql")
	}
	dir, err := os.MkdirTemp("", "ember-pg-")
	if err != nil {
		return nil, err
	}
	c := &PostgresCluster{Dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, initdb needs the postgres user (apt-get install -y postgresql makes it): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if out, err := c.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := c.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func (c *PostgresCluster) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.Dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

// Start starts the cluster (again) and waits until it accepts
// connections.
func (c *PostgresCluster) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up {
		return nil
	}
	// Throwaway data: no fsync (the OS keeps what a stopped server
	// wrote); listen on the socket only. synchronous_commit stays on: a
	// collector confirms to devices what the database said it committed,
	// and with it off a stop loses commits already confirmed, as a crash
	// of a production server would.
	opts := fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=off -c full_page_writes=off -c max_connections=200", c.Dir)
	if out, err := c.run("pg_ctl", "start", "-w", "-t", "60", "-D", filepath.Join(c.Dir, "data"),
		"-l", filepath.Join(c.Dir, "postgres.log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "postgres.log"))
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	c.up = true
	return nil
}

// Stop stops the cluster at once (immediate mode: connections are cut,
// as when a database server goes away).
func (c *PostgresCluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.up {
		return
	}
	c.run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", filepath.Join(c.Dir, "data"))
	c.up = false
}

// Command ffiprobe checks, inside emberd's sandbox, the ways emberd's
// llama.cpp binding can create code at run time: a libffi closure (yzma's
// model-loading progress callback uses one; emberd does not set it today), a
// purego callback (yzma's log callback) — and, as a control, that writable
// and executable memory really is refused, so that a passing probe means the
// sandbox allowed the callbacks rather than that it was not there.
//
// It prints one line per check and exits 1 when a callback fails.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/ebitengine/purego"
	_ "github.com/ember-edge/ember/daemon/libffi" // a clear error when libffi.so.8 is missing
	"github.com/jupiterrider/ffi"
)

func main() {
	failed := false
	report := func(name string, err error) {
		if err != nil {
			failed = true
			fmt.Printf("FAIL %s: %v\n", name, err)
			return
		}
		fmt.Printf("ok %s\n", name)
	}
	where, err := ffiClosure()
	report("libffi closure", err)
	fmt.Printf("info libffi-closure-code %s\n", where)
	report("purego callback", puregoCallback())
	fmt.Printf("info mmap-rwx %s\n", errnoName(mmapRWX()))
	fmt.Printf("info mprotect-exec %s\n", errnoName(mprotectExec()))
	if failed {
		os.Exit(1)
	}
}

// ffiClosure builds a libffi closure for int64 f(int64) that doubles its
// argument and calls it through libffi. It also returns the mapping the
// closure's code lives in, from /proc/self/maps: how libffi got executable
// memory (an anonymous rwx page where that is allowed, else a memory file
// mapped twice, writable and executable).
func ffiClosure() (string, error) {
	var code unsafe.Pointer
	closure := ffi.ClosureAlloc(unsafe.Sizeof(ffi.Closure{}), &code)
	if closure == nil {
		return "", errors.New("ffi_closure_alloc returned NULL")
	}
	where := mappingOf(uintptr(code))
	defer ffi.ClosureFree(closure)
	var cif ffi.Cif
	if st := ffi.PrepCif(&cif, ffi.DefaultAbi, 1, &ffi.TypeSint64, &ffi.TypeSint64); st != ffi.OK {
		return where, fmt.Errorf("ffi_prep_cif: %v", st)
	}
	fn := ffi.NewCallback(func(cif *ffi.Cif, ret unsafe.Pointer, args *unsafe.Pointer, _ unsafe.Pointer) uintptr {
		arg := unsafe.Slice(args, cif.NArgs)
		*(*int64)(ret) = 2 * *(*int64)(arg[0])
		return 0
	})
	if st := ffi.PrepClosureLoc(closure, &cif, fn, nil, code); st != ffi.OK {
		return where, fmt.Errorf("ffi_prep_closure_loc: %v", st)
	}
	in, out := int64(21), int64(0)
	ffi.Call(&cif, uintptr(code), unsafe.Pointer(&out), unsafe.Pointer(&in))
	if out != 42 {
		return where, fmt.Errorf("closure(21) = %d, want 42", out)
	}
	return where, nil
}

// mappingOf describes the /proc/self/maps line holding addr: permissions
// and what is mapped ("[anonymous]" when nothing is named).
func mappingOf(addr uintptr) string {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || uint64(addr) < a || uint64(addr) >= b {
			continue
		}
		name := "[anonymous]"
		if len(f) >= 6 {
			name = strings.Join(f[5:], " ")
		}
		return f[1] + " " + name
	}
	return "unknown (not in /proc/self/maps)"
}

// puregoCallback calls a purego callback through purego, as llama.cpp calls
// yzma's log callback.
func puregoCallback() error {
	cb := purego.NewCallback(func(a uintptr) uintptr { return a + 1 })
	if r, _, _ := purego.SyscallN(cb, 41); r != 42 {
		return fmt.Errorf("callback(41) = %d, want 42", r)
	}
	return nil
}

func mmapRWX() error {
	b, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err == nil {
		syscall.Munmap(b)
	}
	return err
}

func mprotectExec() error {
	b, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return err
	}
	defer syscall.Munmap(b)
	return syscall.Mprotect(b, syscall.PROT_READ|syscall.PROT_EXEC)
}

func errnoName(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "allowed"
	case errors.As(err, &errno) && errno == syscall.EPERM:
		return "denied(EPERM)"
	case errors.As(err, &errno) && errno == syscall.EACCES:
		return "denied(EACCES)"
	}
	return "error(" + err.Error() + ")"
}

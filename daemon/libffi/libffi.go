// Package libffi checks, before the llama.cpp binding initialises, that the
// system's libffi can be opened.
//
// yzma calls llama.cpp through github.com/jupiterrider/ffi, whose package
// init dlopens libffi.so.8 and panics with a bare dlopen error when it is
// missing. Go initialises packages in import-path order among those whose
// imports are ready; this package imports only what that binding imports
// too and its path sorts first, so its init runs earlier and can replace the
// panic with a message that names the fix. Programs that use the engine
// import it for that side effect:
//
//	import _ "github.com/ember-edge/ember/daemon/libffi"
package libffi

import (
	"fmt"
	"os"

	"github.com/ebitengine/purego"
)

// Name is the shared library the ffi binding opens.
const Name = "libffi.so.8"

func init() {
	if err := Check(Name); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(127)
	}
}

// Check reports whether the shared library name can be opened, with an
// install hint in the error.
func Check(name string) error {
	h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return fmt.Errorf("cannot load %s (%v): emberd needs libffi at run time; "+
			"on Debian/Ubuntu install it with `apt-get install libffi8`", name, err)
	}
	// The binding opens it again by itself; keep our handle, dlopen counts.
	_ = h
	return nil
}

// Package bytesize reads and writes sizes in bytes: "512MiB", "2GB",
// "64k", "1.5 g" or a plain number. The daemon's config keys and the
// fleet manifest's fields both use Size, so the two accept the same
// spellings, and every message that shows a size to a person formats it
// the same way ("7.3 GiB").
package bytesize

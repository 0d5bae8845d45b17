//go:build linux && (amd64 || arm64)

package skills

import (
	"syscall"
	"unsafe"
)

// renameExchange is renameat2's RENAME_EXCHANGE (linux/fs.h).
const renameExchange = 1 << 1

// exchange swaps the names a and b in one step (renameat2 with
// RENAME_EXCHANGE): whoever looks sees the old tree or the new one.
func exchange(a, b string) error {
	pa, err := syscall.BytePtrFromString(a)
	if err != nil {
		return err
	}
	pb, err := syscall.BytePtrFromString(b)
	if err != nil {
		return err
	}
	const atFDCWD = -100 // AT_FDCWD: a and b are absolute or relative to the working directory
	fdcwd := atFDCWD
	_, _, errno := syscall.Syscall6(sysRenameat2, uintptr(fdcwd), uintptr(unsafe.Pointer(pa)), uintptr(fdcwd), uintptr(unsafe.Pointer(pb)), renameExchange, 0)
	switch errno {
	case 0:
		return nil
	case syscall.ENOSYS, syscall.EINVAL, syscall.ENOTSUP:
		return errNoExchange // an old kernel, or a file system without it
	}
	return errno
}

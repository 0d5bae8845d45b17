package skills

// sysRenameat2 is renameat2's number here; the syscall package names it
// only on some architectures.
const sysRenameat2 = 316

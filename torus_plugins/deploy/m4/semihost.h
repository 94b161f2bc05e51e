/* Arm semihosting (the debugger, here QEMU, serves the calls): text output, exit with a status. */
#ifndef TORUS_SEMIHOST_H
#define TORUS_SEMIHOST_H
#include <stdint.h>

/* Writes a NUL-terminated string to the host. */
void sh_write(const char *text);
/* Stops the emulator with this exit status. */
void sh_exit(int status);
/* Writes the decimal digits of value (NUL-terminated) at out; returns the position of the NUL. */
char *sh_format_uint(char *out, uint32_t value);

#endif /* TORUS_SEMIHOST_H */

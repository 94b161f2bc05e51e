/* Arm semihosting (the debugger, here QEMU, serves the calls): text output and exit with a status. */
#ifndef TORUS_SEMIHOST_H
#define TORUS_SEMIHOST_H
#include <stdint.h>

void sh_write(const char *text);           /* a NUL-terminated string to the host's stdout */
void sh_exit(int status);                  /* stop the emulator with this exit status */
char *sh_format_uint(char *out, uint32_t value); /* decimal digits of value at out; returns the end */

#endif /* TORUS_SEMIHOST_H */

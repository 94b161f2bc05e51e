/* Minimal startup for a Cortex-M4 on the MPS2 AN386 board: the vector table, a reset handler that
   copies .data from flash to RAM, zeroes .bss and calls main, and Arm semihosting for output and
   exit. */
#include <stdint.h>
#include <string.h>

#include "semihost.h"

#define SYS_WRITE0 0x04u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

/* Defined by the linker script. */
extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[], __stack_top[];
int main(void);
void reset_handler(void);
void fault_handler(void);

/* Initial stack pointer, then the handlers: reset, NMI, hard fault, memory, bus, usage faults. */
__attribute__((section(".vectors"), used)) static const uintptr_t vectors[7] = {
    (uintptr_t)__stack_top,   (uintptr_t)reset_handler, (uintptr_t)fault_handler,
    (uintptr_t)fault_handler, (uintptr_t)fault_handler, (uintptr_t)fault_handler,
    (uintptr_t)fault_handler,
};

static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_write(const char *text)
{
    (void)semihost(SYS_WRITE0, text);
}

void sh_exit(int status)
{
    uint32_t block[2];
    block[0] = ADP_STOPPED_APPLICATION_EXIT;
    block[1] = (uint32_t)status;
    (void)semihost(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

char *sh_format_uint(char *out, uint32_t value)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    while (n > 0) {
        *out++ = digits[--n];
    }
    *out = '\0';
    return out;
}

void fault_handler(void)
{
    sh_write("FAULT\n");
    sh_exit(3);
}

void reset_handler(void)
{
    memcpy(__data_start, __data_load, (size_t)((char *)__data_end - (char *)__data_start));
    memset(__bss_start, 0, (size_t)((char *)__bss_end - (char *)__bss_start));
    sh_exit(main());
}

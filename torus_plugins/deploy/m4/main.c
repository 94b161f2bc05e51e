/* For every query: its codes by the integer head and the top-k stored codes by circular L1,
   printed over semihosting as
   "Q <query> C <codes> K <id>:<distance> ... T <ticks of the head> <ticks of the search>".
   The ticks are SysTick counts (processor clock; with qemu -icount they count instructions). */
#include "head.h"
#include "queries.h"
#include "semihost.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_MASK 0xFFFFFFu

static char line[16 * (HEAD_ANGLES + 2 * TOPK) + 64];

static char *put(char *out, const char *text)
{
    while (*text != '\0') {
        *out++ = *text++;
    }
    *out = '\0';
    return out;
}

int main(void)
{
    uint8_t codes[HEAD_ANGLES];
    uint32_t dist[TOPK];
    int32_t ids[TOPK];
    size_t i, j;
    SYST_RVR = SYST_MASK; /* 24-bit down counter, free running, processor clock */
    SYST_CVR = 0u;
    SYST_CSR = 5u;
    for (i = 0; i < N_QUERIES; ++i) {
        char *p = line;
        uint32_t t0 = SYST_CVR, t1, t2;
        head_codes(queries[i], codes);
        t1 = SYST_CVR;
        head_db_topk(codes, TOPK, dist, ids);
        t2 = SYST_CVR;
        p = put(p, "Q ");
        p = sh_format_uint(p, (uint32_t)i);
        p = put(p, " C");
        for (j = 0; j < HEAD_ANGLES; ++j) {
            p = put(p, " ");
            p = sh_format_uint(p, codes[j]);
        }
        p = put(p, " K");
        for (j = 0; j < TOPK; ++j) {
            p = put(p, " ");
            p = ids[j] < 0 ? put(p, "-1") : sh_format_uint(p, (uint32_t)ids[j]);
            p = put(p, ":");
            p = sh_format_uint(p, dist[j]);
        }
        p = put(p, " T ");
        p = sh_format_uint(p, (t0 - t1) & SYST_MASK);
        p = put(p, " ");
        p = sh_format_uint(p, (t1 - t2) & SYST_MASK);
        put(p, "\n");
        sh_write(line);
    }
    sh_write("END\n");
    return 0;
}

"""The one place numeric tolerances are defined: fp32 programs are compared tightly, fp16 programs at
what fp16 arithmetic can deliver (10 bits of mantissa, errors growing through a chain of ops)."""

TOLERANCES = {
    "float32": dict(rtol=1e-4, atol=1e-5),
    "float16": dict(rtol=1e-2, atol=1e-2),
}

"""Strings that are not UTF-8, as hex (Spark strings may hold them: CAST(binary AS STRING),
files with bad bytes), for the MinHash backends' parity tests (`test_jvm.py`,
`test_minhash_gpu_sim.py`): a stray continuation byte, a stray 0xff, a 2-byte sequence cut at
the end, leading continuation bytes (before fewer code points than a shingle's width, too), a
lone surrogate's encoding, only continuation bytes; and the U+FFFD text a decoded Java String
would hold."""

INVALID_UTF8 = [
    "6162806364",
    "6162ff636465c3",
    "c3",
    "8080616263",
    "808061",
    "61eda080626364",
    "80bf",
    "6162efbfbd636465efbfbd",
]

/* cuda_runtime.h for the CPU emulator (tests/emu/README.md). */
#pragma once
#include "cudaemu.h"
#include "cudaemu_runtime.h"

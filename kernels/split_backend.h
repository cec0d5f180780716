/* A backend whose towers run on several backends at once (tower
 * parallelism): each part computes only its own towers (set_towers), so a
 * step costs the slowest part rather than all four towers on one device.
 * With the xLSTM tower on one GPU and the other three on another, each GPU
 * reads about half the weights and state of a step.
 *
 * Every part holds every slot (same layout, element size and slot count);
 * part k owns the towers in masks[k]: disjoint, together all four. step()
 * runs the parts concurrently (part 0 on the caller's thread, the others on
 * one worker thread each) and takes each tower's output from its owner.
 * export composes a slot from the owners' tower runs (header from part 0);
 * import and reset go to every part; a slot copy between two backends split
 * alike goes part to part (a device or peer copy on GPUs). The split
 * backend owns the parts. */
#ifndef SYM_SPLIT_BACKEND_H
#define SYM_SPLIT_BACKEND_H

#include "kernels/backend.h"

#define SYM_MAX_SPLIT SYM_TOWERS

/* Applies masks[k] to parts[k] (sym_backend_set_towers) and wraps them. On
 * failure the parts are destroyed too. */
sym_backend *sym_split_backend_create(sym_backend **parts, const int *masks, int n, sym_err *e);

/* The tower groups of an n-way split (n = 1, 2 or 4): for 2, the xLSTM
 * tower alone (the heaviest: 102 of 153.5 MB of state at full size) and the
 * other three. Returns -1 for other n. */
int sym_split_masks(int n, int *masks);

#endif

"""Element math of the run-length convolution, written once (one image row at a time).

``prefix_row`` writes the padded prefix sums of an image row: index ``pad + k`` holds
the sum of the row's first ``k`` pixels (0 before the row, the row's total after it),
so the sum of the pixels ``x + lo .. x + hi`` clipped to the row is
``prefix[x + hi + 1 + pad] - prefix[x + lo + pad]`` without a branch.
``add_run`` adds one kernel run's contribution to an output row; the loop over the row
is branch-free (it vectorises).
"""

__all__ = ["prefix_row", "add_run", "convolve_row"]


def prefix_row(image_row, prefix, pad):
    """Padded prefix sums (float64) of one image row into ``prefix`` (length nx + 2 pad + 1)."""
    nx = image_row.shape[0]
    for j in range(pad + 1):
        prefix[j] = 0.0
    total = 0.0
    for x in range(nx):
        total += image_row[x]
        prefix[pad + 1 + x] = total
    for j in range(pad + 1 + nx, prefix.shape[0]):
        prefix[j] = total


def add_run(acc, prefix, start, stop, value):
    """``acc[x] += value * (sum of the image row over the run at column x)``."""
    n = acc.shape[0]
    high = prefix[stop : stop + n]  # views: indices the compiler knows are >= 0
    low = prefix[start : start + n]
    for x in range(n):
        acc[x] += value * (high[x] - low[x])


def convolve_row(prefix, plane, y, runs, values, acc):
    """One output row ``(plane, y)`` of the convolution into ``acc`` (float64, zeroed here)."""
    ny = prefix.shape[1]
    for x in range(acc.shape[0]):
        acc[x] = 0.0
    for r in range(runs.shape[0]):
        source = y + runs[r, 0]
        if source >= 0 and source < ny:
            add_run(acc, prefix[plane, source], runs[r, 1], runs[r, 2], values[r])

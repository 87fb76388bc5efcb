"""Diagrams drawn from boxes and arrows: the recurrent network, folded and unrolled."""
from __future__ import annotations

from matplotlib.figure import Figure

from course_lib import checks
from course_lib.viz.style import COLUMN_WIDTH, FONT_SIZE, TICK_SIZE, new_figure, styled

NODE_COLOURS = {"i": "#dbe9f6", "h": "#fde3c8", "o": "#dcefd9"}  # inputs, hidden states, outputs
NODE_SIZE = 12.0  # points: the symbols in the boxes


@styled
def plot_unrolled_rnn(steps: int = 4, *, title: str = "", figsize: tuple[float, float] | None = None) -> Figure:
    """The recurrent network as a cyclic graph (left) and unrolled over ``steps`` time steps (right).

    Inputs ``i_t`` at the bottom, hidden states ``h_t`` in the middle, outputs ``o_t`` on top; every
    arrow of one kind carries the same matrix (``W_hi``, ``W_hh``, ``W_oh``): the unrolled network is
    a deep network whose layers share their weights. Drawn at the column's width, so it is shown
    at its own size.
    """
    steps = checks.integer("steps", steps, minimum=1, maximum=8,
                           what="an integer from 1 to 8 (the diagram's width)")
    checks.text("title", title)
    gap = 1.35
    start = 4.3  # x of h_1
    figure = new_figure(figsize, (COLUMN_WIDTH, 3.1))
    axes = figure.add_subplot()
    axes.set_xlim(-0.2, start + gap * (steps - 1) + 0.7)
    axes.set_ylim(-0.55, 2.55)
    axes.axis("off")
    # Long diagrams get smaller symbols, so that neighbouring boxes never touch.
    node_size = NODE_SIZE if steps <= 4 else NODE_SIZE * 4.5 / (steps + 0.5)
    label_size = max(TICK_SIZE - 0.5 * max(steps - 4, 0), 7.0)

    def node(x: float, y: float, text: str, kind: str) -> None:
        axes.text(x, y, text, ha="center", va="center", fontsize=node_size, zorder=3,
                  bbox={"boxstyle": "round,pad=0.3", "facecolor": NODE_COLOURS[kind], "edgecolor": "0.3"})

    def arrow(start_xy: tuple[float, float], end_xy: tuple[float, float], label: str = "",
              offset: tuple[float, float] = (0.0, 0.0)) -> None:
        axes.annotate("", xy=end_xy, xytext=start_xy, zorder=2,
                      arrowprops={"arrowstyle": "-|>", "color": "0.25", "shrinkA": 13, "shrinkB": 13})
        if label:
            middle = ((start_xy[0] + end_xy[0]) / 2 + offset[0], (start_xy[1] + end_xy[1]) / 2 + offset[1])
            axes.text(*middle, label, ha="center", va="center", fontsize=label_size, color="0.15")

    # the cyclic graph
    node(0.6, 0, "$i_t$", "i")
    node(0.6, 1, "$h_t$", "h")
    node(0.6, 2, "$o_t$", "o")
    arrow((0.6, 0), (0.6, 1), "$W_{hi}$", (-0.38, 0))
    arrow((0.6, 1), (0.6, 2), "$W_{oh}$", (-0.38, 0))
    axes.annotate("", xy=(0.78, 0.86), xytext=(0.78, 1.14), zorder=2,
                  arrowprops={"arrowstyle": "-|>", "color": "0.25", "shrinkA": 0, "shrinkB": 0,
                              "connectionstyle": "arc3,rad=-2.2"})
    axes.text(1.32, 1.0, "$W_{hh}$", ha="left", va="center", fontsize=label_size, color="0.15")
    axes.text(2.1, 1.0, "unroll\n$\\Longrightarrow$", ha="center", va="center", fontsize=FONT_SIZE)

    # the unrolled network
    names = [str(t) for t in range(1, steps + 1)] if steps <= 4 else [*map(str, range(1, steps)), "T"]
    node(start - gap, 1, "$h_0$", "h")
    for index, t in enumerate(names):
        x = start + gap * index
        node(x, 0, f"$i_{{{t}}}$", "i")
        node(x, 1, f"$h_{{{t}}}$", "h")
        node(x, 2, f"$o_{{{t}}}$", "o")
        arrow((x, 0), (x, 1), "$W_{hi}$", (-0.38, 0))
        arrow((x, 1), (x, 2), "$W_{oh}$", (-0.38, 0))
        arrow((x - gap, 1), (x, 1), "$W_{hh}$", (0, 0.2))
    if title:
        axes.set_title(title)
    return figure

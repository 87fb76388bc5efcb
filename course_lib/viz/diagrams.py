"""Diagrams drawn from boxes and arrows: the recurrent network, folded and unrolled; the encoder-decoder;
the LSTM cell; GPT-2."""
from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from course_lib import checks
from course_lib.viz.style import COLUMN_WIDTH, FONT_SIZE, SMALL_SIZE, TICK_SIZE, new_figure, styled

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


ENCODER_DECODER_COLOURS = {"x": NODE_COLOURS["i"], "h": NODE_COLOURS["h"], "s": "#e6dcf0", "y": NODE_COLOURS["o"],
                           "c": "#ffd54f"}


@styled
def plot_encoder_decoder(source: tuple[str, ...] = ("Mia", "found", "a", "kite"), target_steps: int = 3, *,
                         attention_step: int | None = None, title: str = "",
                         figsize: tuple[float, float] | None = None) -> Figure:
    """The encoder-decoder unrolled: the encoder's states ``h_i`` over the source words, the
    decoder's states ``s_t`` reading ``BOS, y_1, ..`` and writing ``y_1, .., EOS``.

    Without attention (``attention_step=None``) the last encoder state, the context vector, is the
    decoder's only link to the source (drawn highlighted). With ``attention_step = t`` the lines
    from every encoder state to the context vector ``c_t`` of decoder step ``t`` are drawn too.
    """
    words = [checks.text(f"source[{i}]", word) for i, word in enumerate(source)]
    if not 1 <= len(words) <= 5:
        raise checks.ArgumentError(f"the diagram has room for 1 to 5 source words, got {len(words)}")
    steps = checks.integer("target_steps", target_steps, minimum=1, maximum=4)
    if attention_step is not None:
        checks.integer("attention_step", attention_step, minimum=1, maximum=steps)
    checks.text("title", title)
    figure = new_figure(figsize, (COLUMN_WIDTH, 3.3 if attention_step is None else 3.9))
    axes = figure.add_subplot()
    gap = 0.95
    sources = [*words, "EOS"]
    decoder_start = gap * len(sources) + 0.55
    top = 2.0 if attention_step is None else 2.9
    axes.set_xlim(-0.45, decoder_start + gap * (steps - 1) + 0.5)
    axes.set_ylim(-0.5, top + 0.5)
    axes.axis("off")

    def node(x: float, y: float, text: str, kind: str, size: float = TICK_SIZE) -> None:
        axes.text(x, y, text, ha="center", va="center", fontsize=size, zorder=3,
                  bbox={"boxstyle": "round,pad=0.3", "facecolor": ENCODER_DECODER_COLOURS[kind], "edgecolor": "0.3"})

    def arrow(start_xy, end_xy, colour="0.25", width=1.0, shrink=11) -> None:
        axes.annotate("", xy=end_xy, xytext=start_xy, zorder=2,
                      arrowprops={"arrowstyle": "-|>", "color": colour, "lw": width, "shrinkA": shrink,
                                  "shrinkB": shrink})

    for i, word in enumerate(sources):
        x = gap * i
        node(x, 0, word, "x")
        node(x, 1, f"$h_{{{i + 1}}}$", "h")
        arrow((x, 0), (x, 1))
        if i:
            arrow((x - gap, 1), (x, 1))
    arrow((gap * (len(sources) - 1), 1), (decoder_start, 1), colour="#b8860b" if attention_step is None else "0.25",
          width=2.2 if attention_step is None else 1.0)
    if attention_step is None:
        axes.text((gap * (len(sources) - 1) + decoder_start) / 2, 1.28, "context\nvector", ha="center",
                  va="bottom", fontsize=SMALL_SIZE, color="#7a5a00")
    inputs = ["BOS", *[f"$y_{{{t}}}$" for t in range(1, steps)]]
    outputs = [*[f"$y_{{{t}}}$" for t in range(1, steps)], "EOS"]
    for t in range(steps):
        x = decoder_start + gap * t
        node(x, 0, inputs[t], "y")
        node(x, 1, f"$s_{{{t + 1}}}$", "s")
        node(x, 2, outputs[t], "y")
        arrow((x, 0), (x, 1))
        arrow((x, 1), (x, 2))
        if t:
            arrow((x - gap, 1), (x, 1))
            arrow((x - gap + 0.15, 2), (x - 0.1, 0.12), colour="0.6", shrink=9)  # its output is the next input
    if attention_step is not None:
        x = decoder_start + gap * (attention_step - 1)
        node(x, top, f"$c_{{{attention_step}}}$", "c")
        for i in range(len(sources)):
            axes.annotate("", xy=(x, top), xytext=(gap * i, 1), zorder=1,
                          arrowprops={"arrowstyle": "-|>", "color": "#b8860b", "lw": 0.9, "alpha": 0.8,
                                      "shrinkA": 11, "shrinkB": 11, "connectionstyle": "arc3,rad=-0.12"})
        arrow((x, top), (x + 0.02, 2), colour="#b8860b")
        axes.annotate("", xy=(x + 0.28, top - 0.1), xytext=(x + 0.2, 1.12), zorder=1,
                      arrowprops={"arrowstyle": "-|>", "color": "0.35", "lw": 1.0, "linestyle": "--",
                                  "shrinkA": 2, "shrinkB": 6, "connectionstyle": "arc3,rad=0.25"})
        axes.text(x + 0.42, 1.5, "query", ha="left", va="center", fontsize=SMALL_SIZE, color="0.3")
        axes.text(x + 0.3, top, "$\\sum_i \\alpha_{i," + str(attention_step) + "}\\, h_i$", ha="left", va="center",
                  fontsize=TICK_SIZE)
    axes.text(gap * (len(sources) - 1) / 2, -0.45, "encoder", ha="center", va="top", fontsize=FONT_SIZE)
    axes.text(decoder_start + gap * (steps - 1) / 2, -0.45, "decoder", ha="center", va="top", fontsize=FONT_SIZE)
    if title:
        axes.set_title(title)
    return figure


LSTM_COLOURS = {"gate": "#e6dcf0", "op": "white", "C": "#fff3c4", **NODE_COLOURS}
# (symbol, activation, role) of each gate, left to right as the diagram draws them
LSTM_DIAGRAM_GATES = (("A_t", "\\sigma", "forget"), ("B_t", "\\sigma", "input"),
                      ("\\hat C_t", "\\tanh", "candidate"), ("D_t", "\\sigma", "output"))


@styled
def plot_lstm_cell(*, title: str = "", figsize: tuple[float, float] | None = None) -> Figure:
    """One LSTM step: the memory line on top, the four gates below it, the hidden state at the bottom.

    The gates read ``[h_{t-1}, i_t]``; along the memory line ``C_{t-1}`` is multiplied by the forget
    gate ``A_t`` and the input gate's share ``B_t ⊙ Ĉ_t`` is added, ``C_t = A_t ⊙ C_{t-1} + B_t ⊙ Ĉ_t``;
    the output gate shows ``h_t = D_t ⊙ tanh(C_t)``. Nothing on the memory line passes through a
    weight matrix: that line is the gradient highway.
    """
    checks.text("title", title)
    figure = new_figure(figsize, (COLUMN_WIDTH, 3.4))
    axes = figure.add_subplot()
    axes.set_xlim(-0.3, 10.3)
    axes.set_ylim(-0.35, 4.0)
    axes.axis("off")
    memory_y, gate_y, product_y = 3.3, 1.55, 2.45

    def box(x: float, y: float, text: str, kind: str, size: float = TICK_SIZE, shape: str = "round") -> None:
        axes.text(x, y, text, ha="center", va="center", fontsize=size, zorder=3,
                  bbox={"boxstyle": f"{shape},pad=0.3", "facecolor": LSTM_COLOURS[kind], "edgecolor": "0.3"})

    def arrow(start_xy, end_xy, colour="0.25", width=1.0, shrink=10.0, shrink_start=None) -> None:
        axes.annotate("", xy=end_xy, xytext=start_xy, zorder=2,
                      arrowprops={"arrowstyle": "-|>", "color": colour, "lw": width,
                                  "shrinkA": shrink if shrink_start is None else shrink_start, "shrinkB": shrink})

    highway = "#b8860b"
    # the memory line: C_{t-1} -> x A_t -> + B_t Ĉ_t -> C_t
    forget_x, add_x, show_x = 2.3, 5.0, 8.3
    box(0.2, memory_y, "$C_{t-1}$", "C", NODE_SIZE)
    box(forget_x, memory_y, "$\\times$", "op", shape="circle")
    box(add_x, memory_y, "$+$", "op", shape="circle")
    box(9.8, memory_y, "$C_t$", "C", NODE_SIZE)
    for start, end in ((0.2, forget_x), (forget_x, add_x), (add_x, 9.8)):
        arrow((start, memory_y), (end, memory_y), colour=highway, width=2.2, shrink=14)
    axes.text((forget_x + add_x) / 2, memory_y + 0.3, "memory: no weight matrix", ha="center", va="bottom",
              fontsize=SMALL_SIZE, color="#7a5a00")
    # the gates, all reading [h_{t-1}, i_t] from one bus
    bus_y = 0.6
    box(0.2, 0.2, "$h_{t-1}$", "h", NODE_SIZE)
    box(1.3, -0.15, "$i_t$", "i", NODE_SIZE)
    gate_xs = (forget_x, 3.7, add_x, 6.9)
    axes.plot([0.2, 1.3, 1.3], [bus_y, bus_y, bus_y], color="0.55", lw=0.8)
    axes.plot([0.2, 0.2], [0.2 + 0.2, bus_y], color="0.55", lw=0.8)
    axes.plot([1.3, 1.3], [-0.15 + 0.2, bus_y], color="0.55", lw=0.8)
    axes.plot([0.2, gate_xs[-1]], [bus_y, bus_y], color="0.55", lw=0.8)
    axes.text(0.75, bus_y + 0.08, "$[h_{t-1}, i_t]$", ha="center", va="bottom", fontsize=TICK_SIZE)
    for x, (symbol, activation, role) in zip(gate_xs, LSTM_DIAGRAM_GATES):
        box(x, gate_y, f"${activation}$", "gate")
        label_x = x + (0.32 if activation == "\\sigma" else 0.5)  # tanh's box is wider
        axes.text(label_x, gate_y - 0.02, f"${symbol}$\n{role}", ha="left", va="center", fontsize=SMALL_SIZE,
                  color="0.2", linespacing=1.1)
        arrow((x, bus_y), (x, gate_y), colour="0.55", width=0.8, shrink=9, shrink_start=0)
    # forget: A_t multiplies the memory; input: B_t ⊙ Ĉ_t is added
    arrow((forget_x, gate_y), (forget_x, memory_y))
    write_x = (gate_xs[1] + gate_xs[2]) / 2
    box(write_x, product_y, "$\\times$", "op", shape="circle")
    arrow((gate_xs[1], gate_y), (write_x, product_y), shrink=9)
    arrow((gate_xs[2], gate_y), (write_x, product_y), shrink=9)
    arrow((write_x, product_y), (add_x, memory_y), shrink=9)
    # output: h_t = D_t ⊙ tanh(C_t)
    box(show_x, product_y, "$\\tanh$", "op", shape="round")
    box(show_x, gate_y - 0.55, "$\\times$", "op", shape="circle")
    arrow((show_x, memory_y), (show_x, product_y), shrink=9)
    arrow((show_x, product_y), (show_x, gate_y - 0.55), shrink=9)
    arrow((gate_xs[3], gate_y), (show_x, gate_y - 0.55), shrink=9)
    box(9.8, 0.2, "$h_t$", "h", NODE_SIZE)
    arrow((show_x, gate_y - 0.55), (9.8, 0.2), shrink=11)
    if title:
        axes.set_title(title)
    return figure


GPT_COLOURS = {"embedding": NODE_COLOURS["i"], "norm": "#eeeeee", "attention": "#fde3c8", "mlp": "#e6dcf0",
               "head": NODE_COLOURS["o"], "op": "white"}
TIED_COLOUR = "#b8860b"


@styled
def plot_gpt_architecture(vocab_size: int = 50257, max_context: int = 1024, d_model: int = 768, num_layers: int = 12,
                          d_ff: int | None = None, *, title: str = "",
                          figsize: tuple[float, float] | None = None) -> Figure:
    """GPT-2 drawn from the bottom up, each part labelled with its ``GPT2Model`` name and shape.

    The token and position embeddings (``wte``, ``wpe``) are added; ``num_layers`` pre-norm blocks
    (``h.0`` ..) each add masked self-attention (``ln_1``, ``attn.c_attn``, ``attn.c_proj``) and then
    the feed-forward network (``ln_2``, ``mlp.c_fc``, GELU, ``mlp.c_proj``) to the residual stream;
    the final layer norm ``ln_f`` and the read-out ``lm_head``, which is ``wte`` itself (the dashed
    line), give the next token's distribution. ``d_ff`` defaults to ``4 * d_model``, as in GPT-2.
    The defaults are GPT-2 small's.
    """
    vocab_size = checks.integer("vocab_size", vocab_size, minimum=1)
    max_context = checks.integer("max_context", max_context, minimum=1)
    d_model = checks.integer("d_model", d_model, minimum=1)
    num_layers = checks.integer("num_layers", num_layers, minimum=1)
    d_ff = 4 * d_model if d_ff is None else checks.integer("d_ff", d_ff, minimum=1)
    checks.text("title", title)
    figure = new_figure(figsize, (COLUMN_WIDTH, 5.6))
    axes = figure.add_subplot()
    axes.set_xlim(0, 10.4)
    axes.set_ylim(-0.45, 12.75)
    axes.axis("off")
    stream_x, branch_x, tie_x, names_x = 3.2, 1.45, 4.95, 5.45

    def box(x: float, y: float, text: str, kind: str, shape: str = "round") -> None:
        axes.text(x, y, text, ha="center", va="center", fontsize=TICK_SIZE, zorder=3, linespacing=1.15,
                  bbox={"boxstyle": f"{shape},pad=0.35", "facecolor": GPT_COLOURS[kind], "edgecolor": "0.3"})

    def arrow(start_xy, end_xy, shrink_start=11.0, shrink_end=11.0) -> None:
        axes.annotate("", xy=end_xy, xytext=start_xy, zorder=2,
                      arrowprops={"arrowstyle": "-|>", "color": "0.25", "lw": 1.0, "shrinkA": shrink_start,
                                  "shrinkB": shrink_end})

    def line(xs, ys) -> None:
        axes.plot(xs, ys, color="0.25", lw=1.0, zorder=1)

    def name(y: float, text: str) -> None:
        axes.text(names_x, y, text, ha="left", va="center", fontsize=SMALL_SIZE, family="monospace",
                  color="0.15", linespacing=1.3)

    # embeddings: E[w_t] + P[t]
    token_x, position_x, embed_y, sum_y = 4.1, 2.1, 1.05, 2.0
    axes.text(token_x, -0.15, "token $w_t$", ha="center", va="center", fontsize=TICK_SIZE)
    axes.text(position_x, -0.15, "position $t$", ha="center", va="center", fontsize=TICK_SIZE)
    box(token_x, embed_y, "token\nembedding", "embedding")
    box(position_x, embed_y, "position\nembedding", "embedding")
    arrow((token_x, -0.15), (token_x, embed_y), 7, 15)
    arrow((position_x, -0.15), (position_x, embed_y), 7, 15)
    box(stream_x, sum_y, "$+$", "op", shape="circle")
    arrow((token_x, embed_y), (stream_x, sum_y), 15, 9)
    arrow((position_x, embed_y), (stream_x, sum_y), 15, 9)
    name(embed_y, f"wte   {vocab_size:,} × {d_model:,}\nwpe   {max_context:,} × {d_model:,}")

    # one pre-norm block, drawn once and repeated num_layers times
    block_bottom, block_top = 2.6, 9.45
    axes.add_patch(FancyBboxPatch((0.25, block_bottom), 4.3, block_top - block_bottom, zorder=0,
                                  boxstyle="round,pad=0.05,rounding_size=0.25", facecolor="#f7f7f7",
                                  edgecolor="0.5", linestyle="--"))
    axes.text(0.45, block_top - 0.3, f"× {num_layers}", ha="left", va="center", fontsize=FONT_SIZE,
              fontweight="bold", color="0.3")
    name(block_bottom + 0.15, f"h.0 … h.{num_layers - 1}   {num_layers} × GPT2Block")
    sublayers = ((3.0, "ln_1", "masked multi-head\nself-attention", "attention",
                  f"attn.c_attn  {d_model:,} → {3 * d_model:,} (q, k, v)\nattn.c_proj  {d_model:,} → {d_model:,}"),
                 (6.3, "ln_2", "feed-forward\n(GELU)", "mlp",
                  f"mlp.c_fc     {d_model:,} → {d_ff:,}\nmlp.act      GELU (tanh)\n"
                  f"mlp.c_proj   {d_ff:,} → {d_model:,}"))
    for branch_y, norm_name, label, kind, names in sublayers:
        norm_y, layer_y, add_y = branch_y + 0.6, branch_y + 1.75, branch_y + 2.85
        line([stream_x, branch_x], [branch_y, branch_y])
        box(branch_x, norm_y, "layer norm", "norm")
        box(branch_x, layer_y, label, kind)
        box(stream_x, add_y, "$+$", "op", shape="circle")
        arrow((branch_x, branch_y), (branch_x, norm_y), 0, 9)
        arrow((branch_x, norm_y), (branch_x, layer_y), 9, 17)
        line([branch_x, branch_x], [layer_y + 0.45, add_y])
        arrow((branch_x, add_y), (stream_x, add_y), 0, 9)
        name(norm_y, f"{norm_name}         LayerNorm({d_model:,})")
        name(layer_y, names)
    # the residual stream runs straight through
    arrow((stream_x, sum_y), (stream_x, 5.85), 9, 9)
    arrow((stream_x, 5.85), (stream_x, 9.15), 9, 9)
    axes.text(stream_x + 0.12, 4.3, "residual\nstream", ha="left", va="center", fontsize=SMALL_SIZE, color="0.35",
              rotation=90)

    # the top: final layer norm, read-out tied to wte, softmax
    norm_y, head_y, out_y = 10.15, 11.1, 12.15
    box(stream_x, norm_y, "layer norm", "norm")
    box(stream_x, head_y, "linear read-out $E^\\top$", "head")
    axes.text(stream_x, out_y, "$P(w_{t+1} \\mid w_1, \\dots, w_t)$", ha="center", va="center",
              fontsize=TICK_SIZE)
    arrow((stream_x, 9.15), (stream_x, norm_y), 9, 9)
    arrow((stream_x, norm_y), (stream_x, head_y), 9, 9)
    arrow((stream_x, head_y), (stream_x, out_y), 9, 9)
    name(norm_y, f"ln_f         LayerNorm({d_model:,})")
    name(head_y, f"lm_head      {d_model:,} → {vocab_size:,} (is wte)")
    name(out_y, "softmax: the next token")
    tied = {"color": TIED_COLOUR, "lw": 1.3, "linestyle": (0, (4, 2)), "zorder": 1}
    axes.plot([4.27, tie_x, tie_x, 4.77], [head_y, head_y, embed_y, embed_y], **tied)  # box edge to box edge
    axes.text(tie_x + 0.1, 6.0, "the same matrix $E$", ha="left", va="center", fontsize=SMALL_SIZE,
              color="#7a5a00", rotation=90)
    if title:
        axes.set_title(title)
    return figure

"""``google.colab.output`` as a test sees it: the port proxy's frame, drawn as a line of text."""


def serve_kernel_port_as_iframe(port: int, height: str = "400") -> None:
    """Colab shows the kernel machine's ``port`` in an iframe through its proxy; here a line says so."""
    from IPython.display import display

    display(f"(Colab's proxy would show port {port} here, {height} pixels high)")

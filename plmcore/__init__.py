"""plmcore: fine-tune protein language models with LoRA, evaluate, embed and score.

The engine under the Streamlit app; importable and usable without Streamlit.
"""

__version__ = "0.1.0"

"""Streamlit entry point (placeholder until the app pages land)."""

import streamlit as st

st.set_page_config(page_title="PLM fine-tuning", layout="wide")
st.title("Protein language model fine-tuning")
st.info("The web pages are being built. Meanwhile use the command line: `python -m plmcore --help`.")

"""Streamlit entry point: navigation over pages/ and the shared sidebar."""

import streamlit as st

from plmcore import ui

st.set_page_config(page_title="PLM fine-tuning", page_icon="🧬", layout="wide")
ui.require_sign_in()

pages = st.navigation(
    [
        st.Page("pages/data.py", title="Data", icon=":material/upload_file:", default=True),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/runs.py", title="Runs & evaluation", icon=":material/analytics:"),
        st.Page("pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
        st.Page("pages/predict.py", title="Predict", icon=":material/biotech:"),
    ]
)
ui.guard(ui.sidebar)
pages.run()

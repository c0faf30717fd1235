"""seasonrec: season-aware recommendations and demand forecasts on Spark, Delta, Horovod and TensorFlow."""

from setuptools import find_packages, setup

setup(
    name="seasonrec",
    version="0.1.0",
    description="Season-aware recommender and demand forecasting job suite for Spark + Delta + Horovod",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    include_package_data=True,
    package_data={"seasonrec": ["conf/*.yaml"]},
    # Only what a Databricks ML runtime (15.4 LTS ML) lacks or has too old, so a cluster library install
    # never replaces the runtime's own Spark, pandas, pyarrow, numpy, TensorFlow or MLflow.
    install_requires=[
        "pyyaml>=6",
        "pydantic>=2,<3",  # the runtime ships pydantic 1
        "holidays",
        "statsforecast>=2",
        "lightgbm>=4.7,<5",
    ],
    extras_require={
        # Everything the runtime provides, for laptops, CI and plain Spark clusters: `make setup` installs
        # `.[local,cpu,dev,serving]` with constraints.txt (scripts/bootstrap.sh).
        "local": [
            "pyspark>=3.5,<3.6",
            "numpy>=1.26,<2",
            "pandas>=2.2,<2.3",
            "pyarrow>=14,<15",
            "petastorm==0.13.1",
            "deltalake>=1.0,<2",  # the local Delta commit engine (clusters commit with delta-spark)
            "mlflow-skinny",
            "matplotlib",
            "psutil",
            "cloudpickle",
            "openpyxl>=3.1,<4",  # `seasonrec ingest` of .xlsx workbooks (the official UCI Online Retail file)
        ],
        # CPU TensorFlow for laptops/CI; GPU clusters install `[local,gpu]` and build Horovod with NCCL.
        "cpu": ["tensorflow-cpu==2.15.1"],
        "gpu": ["tensorflow==2.15.1"],
        "dev": ["pytest", "ruff"],
        # `mlflow models serve`, the model registry (SQLite store) and the recent-activity reader of a server.
        "serving": ["mlflow==3.17.2", "deltalake>=1.0,<2"],
    },
    entry_points={"console_scripts": ["seasonrec=seasonrec.cli:main"]},
)
